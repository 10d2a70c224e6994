# Run by python.test under the shim: lists, dicts, sets, big integers, JSON,
# many small objects. The output is fixed (see prog.py.expected).
import collections
import hashlib
import json


def primes(n):
    sieve = [True] * (n + 1)
    sieve[0] = sieve[1] = False
    for i in range(2, int(n ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = [False] * len(sieve[i * i::i])
    return [i for i, p in enumerate(sieve) if p]


p = primes(200000)
print("primes", len(p), sum(p))

words = ["w%d" % ((i * 7919) % 1000) for i in range(200000)]
counts = collections.Counter(words)
print("words", len(counts), counts.most_common(1)[0][1], sorted(counts)[:3])

f = 1
for i in range(1, 1201):
    f *= i
print("1200! digits", len(str(f)), "digit sum", sum(map(int, str(f))))

class Node:
    __slots__ = ("key", "kids")

    def __init__(self, key):
        self.key = key
        self.kids = []

nodes = [Node(i) for i in range(100000)]
for i in range(1, len(nodes)):
    nodes[(i - 1) // 3].kids.append(nodes[i])
depth, frontier = 0, [nodes[0]]
while frontier:
    frontier = [k for n in frontier for k in n.kids]
    depth += 1
print("tree depth", depth)

doc = {str(i): {"v": [i, i * i, str(i) * 3], "s": {"k%d" % j: j for j in range(i % 7)}}
       for i in range(5000)}
text = json.dumps(doc, sort_keys=True)
back = json.loads(text)
print("json", len(text), back == doc, hashlib.sha256(text.encode()).hexdigest()[:16])
