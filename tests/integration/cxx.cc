// C++ under the shim: new/delete in all their forms (arrays, over-aligned,
// sized, nothrow), failure on huge sizes, and standard containers churned
// across std::thread with objects destroyed by a thread other than the one
// that built them; containers built by static initializers before main.
//
//   cxx shim   (run under LD_PRELOAD=$NUMASHIM_LIB: malloc must be the shim's)
//   cxx ref    (run without the shim)
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "tests/integration/check.h"

namespace {

std::atomic<long> live_objects{0};

struct Counted {
	unsigned long v;
	Counted() : v(0xC0FFEE) { ++live_objects; }
	~Counted() { --live_objects; v = 0; }
};

struct alignas(64) Line {
	unsigned char b[64];
};

struct alignas(4096) PageObj {
	unsigned char b[100];
};

// No virtual destructor: delete of this type calls the sized operator delete.
struct Sized {
	char pad[200];
};

template <class T> void *sink(T *p)
{
	void *volatile v = p;
	return v;
}

void test_new_delete()
{
	int *i = new int(42);
	CHECK(*i == 42, "new int(42): expected 42, got %d", *i);
	delete i;

	long before = live_objects;
	Counted *a = new Counted[1000];
	CHECK(live_objects == before + 1000, "new Counted[1000]: expected 1000 constructions, got %ld",
	      live_objects - before);
	for (int k = 0; k < 1000; k++)
		CHECK(a[k].v == 0xC0FFEE, "new Counted[1000]: element %d not constructed", k);
	delete[] a;
	CHECK(live_objects == before, "delete[] Counted[1000]: expected 1000 destructions, got %ld",
	      before + 1000 - live_objects);

	for (int n = 0; n < 2000; n++) {
		Line *l = new Line;
		CHECK(((uintptr_t)l & 63) == 0, "new Line (alignas(64)): expected 64-byte alignment, got %p",
		      (void *)l);
		memset(l->b, n & 0xff, sizeof l->b);
		sink(l);
		delete l;
		Line *la = new Line[n % 17 + 1];
		CHECK(((uintptr_t)la & 63) == 0, "new Line[%d]: expected 64-byte alignment, got %p",
		      n % 17 + 1, (void *)la);
		sink(la);
		delete[] la;
	}
	PageObj *po = new PageObj;
	CHECK(((uintptr_t)po & 4095) == 0, "new PageObj (alignas(4096)): expected 4096-byte alignment, "
	      "got %p", (void *)po);
	delete po;

	for (int n = 0; n < 5000; n++) {
		Sized *s = new Sized;
		memset(s->pad, 1, sizeof s->pad);
		sink(s);
		delete s; // sized delete (-fsized-deallocation)
		size_t sz = 1 + (size_t)n * 37 % 70000;
		void *p = ::operator new(sz);
		memset(p, 2, sz);
		::operator delete(p, sz);
		p = ::operator new(sz, std::align_val_t(256));
		CHECK(((uintptr_t)p & 255) == 0, "operator new(%zu, align 256): expected alignment, got %p",
		      sz, p);
		memset(p, 3, sz);
		::operator delete(p, sz, std::align_val_t(256));
	}
}

void test_huge()
{
	size_t huge = HIDE((size_t)PTRDIFF_MAX + 1);
	void *p = ::operator new(huge, std::nothrow);
	CHECK(p == nullptr, "operator new(PTRDIFF_MAX+1, nothrow): expected nullptr, got %p", p);
	p = ::operator new[](huge, std::nothrow);
	CHECK(p == nullptr, "operator new[](PTRDIFF_MAX+1, nothrow): expected nullptr, got %p", p);
	size_t n = HIDE((size_t)1 << 61);
	char *c = new (std::nothrow) char[n];
	CHECK(c == nullptr, "new (nothrow) char[1<<61]: expected nullptr, got %p", (void *)c);
	p = ::operator new(huge, std::align_val_t(64), std::nothrow);
	CHECK(p == nullptr, "operator new(PTRDIFF_MAX+1, align 64, nothrow): expected nullptr, got %p", p);

	const char *got = "no exception";
	try {
		p = ::operator new(huge);
		::operator delete(p);
	} catch (const std::bad_alloc &) {
		got = nullptr;
	} catch (...) {
		got = "another exception";
	}
	CHECK(got == nullptr, "operator new(PTRDIFF_MAX+1): expected std::bad_alloc, got %s", got);
	got = "no exception";
	try {
		c = new char[n];
		delete[] c;
	} catch (const std::bad_alloc &) {
		got = nullptr;
	} catch (...) {
		got = "another exception";
	}
	CHECK(got == nullptr, "new char[1<<61]: expected std::bad_alloc, got %s", got);
	got = "no exception";
	try {
		p = ::operator new(huge, std::align_val_t(4096));
		::operator delete(p, std::align_val_t(4096));
	} catch (const std::bad_alloc &) {
		got = nullptr;
	}
	CHECK(got == nullptr, "operator new(PTRDIFF_MAX+1, align 4096): expected std::bad_alloc, got %s",
	      got);
}

// A batch of containers whose content is a function of (producer, seq).
struct Batch {
	int producer, seq;
	std::vector<std::string> strings;
	std::map<int, std::string> map;
	std::vector<std::unique_ptr<Line>> lines;
};

std::string text(int producer, int seq, int k)
{
	std::string s = "p" + std::to_string(producer) + "-s" + std::to_string(seq) + "-k" +
			std::to_string(k);
	s.append((size_t)(k * 7 % 300), (char)('a' + k % 26));
	return s;
}

std::unique_ptr<Batch> make_batch(int producer, int seq)
{
	auto b = std::make_unique<Batch>();
	b->producer = producer;
	b->seq = seq;
	int n = 1 + (producer * 31 + seq * 17) % 120;
	for (int k = 0; k < n; k++) {
		b->strings.push_back(text(producer, seq, k));
		b->map.emplace(k * 3, text(seq, producer, k));
		if (k % 8 == 0) {
			b->lines.push_back(std::make_unique<Line>());
			memset(b->lines.back()->b, k & 0xff, 64);
		}
	}
	return b;
}

bool check_batch(const Batch &b, int consumer)
{
	int n = 1 + (b.producer * 31 + b.seq * 17) % 120;
	bool ok = b.strings.size() == (size_t)n && b.map.size() == (size_t)n;
	for (int k = 0; ok && k < n; k++) {
		auto it = b.map.find(k * 3);
		ok = b.strings[k] == text(b.producer, b.seq, k) && it != b.map.end() &&
		     it->second == text(b.seq, b.producer, k);
	}
	for (size_t k = 0; ok && k < b.lines.size(); k++)
		ok = ((uintptr_t)b.lines[k].get() & 63) == 0 && b.lines[k]->b[63] == ((k * 8) & 0xff);
	if (!ok)
		check_fail(__FILE__, __LINE__, "thread %d: batch (producer %d, seq %d): expected its "
			   "strings/map/lines intact, got a difference", consumer, b.producer, b.seq);
	return ok;
}

// Static initializers that allocate (they run before main, and before the
// shim's constructor if the program were loaded before it).
std::map<int, std::string> global_map = [] {
	std::map<int, std::string> m;
	for (int k = 0; k < 500; k++)
		m.emplace(k, text(-1, -1, k));
	return m;
}();
std::vector<std::string> *global_vec = [] {
	auto *v = new std::vector<std::string>;
	for (int k = 0; k < 300; k++)
		v->push_back(text(-2, -2, k));
	return v;
}();

void test_static_init()
{
	bool ok = global_map.size() == 500 && global_vec->size() == 300;
	for (int k = 0; ok && k < 500; k++)
		ok = global_map[k] == text(-1, -1, k);
	for (int k = 0; ok && k < 300; k++)
		ok = (*global_vec)[k] == text(-2, -2, k);
	CHECK(ok, "containers built by static initializers: expected 500 + 300 known strings, got "
	      "%zu + %zu or different contents", global_map.size(), global_vec->size());
	global_vec->resize(5000, "grown after main started");
	delete global_vec;
	global_vec = nullptr;
	global_map.clear();
}

std::mutex qlock;
std::condition_variable qcond;
std::deque<std::unique_ptr<Batch>> queue;
std::atomic<int> consumed{0};

void test_threads(int nthreads, int batches)
{
	std::vector<std::thread> th;
	for (int t = 0; t < nthreads; t++)
		th.emplace_back([t, batches] {
			for (int s = 0; s < batches; s++) {
				// private churn
				std::vector<std::string> v;
				for (int k = 0; k < 50; k++) {
					v.push_back(text(t, s, k));
					if (k % 5 == 0)
						v.erase(v.begin());
				}
				v.shrink_to_fit();
				// hand a batch to someone else; destroy what we receive
				auto b = make_batch(t, s);
				std::unique_ptr<Batch> got;
				{
					std::lock_guard<std::mutex> g(qlock);
					queue.push_back(std::move(b));
					if (queue.size() > 4) {
						got = std::move(queue.front());
						queue.pop_front();
					}
				}
				if (got) {
					check_batch(*got, t);
					consumed++;
				}
			}
		});
	for (auto &t : th)
		t.join();
	for (auto &b : queue) {
		check_batch(*b, -1);
		consumed++;
	}
	queue.clear();
	CHECK(consumed == nthreads * batches, "threads: expected %d batches consumed, got %d",
	      nthreads * batches, consumed.load());
}

} // namespace

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "shim") != 0 && strcmp(argv[1], "ref") != 0)) {
		fprintf(stderr, "usage: %s shim|ref\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, nullptr, _IOLBF, 0);
	deadlock_guard(240);
	// One open and close through libc's functions: a preloaded
	// alloc_io.so (je-start.test) shows by them that it was in use.
	int fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || close(fd) != 0)
		check_failures++;
	if (strcmp(argv[1], "shim") == 0 && !served_by_shim("malloc"))
		check_failures++;
	test_static_init();
	test_new_delete();
	test_huge();
	test_threads(8, 2000);
	CHECK(live_objects == 0, "expected every Counted destroyed, got %ld alive", live_objects.load());
	printf("cxx: done\n");
	CHECK_EXIT();
}
