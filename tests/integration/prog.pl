# Run by perl.test under the shim: hashes, arrays, strings, regexes, sort,
# references. The output is fixed (see prog.pl.expected).
use strict;
use warnings;

my %count;
for my $i (0 .. 199_999) {
    $count{ 'k' . (($i * 7919) % 5000) }++;
}
my @keys = sort keys %count;
print "keys ", scalar(@keys), " first $keys[0] last $keys[-1] count $count{k42}\n";

my @nums = map { ($_ * 2654435761) % 1000003 } 1 .. 100_000;
my @sorted = sort { $a <=> $b } @nums;
my $sum = 0;
$sum += $_ for @sorted[0 .. 999];
print "sorted min $sorted[0] max $sorted[-1] sum1000 $sum\n";

my $text = join ' ', map { "word$_" x (1 + $_ % 3) } 1 .. 50_000;
my $matches = () = $text =~ /word(\d*7)\b/g;
(my $copy = $text) =~ s/word/W/g;
print "text ", length($text), " matches $matches copy ", length($copy), "\n";

my $tree = {};
for my $i (1 .. 30_000) {
    my $n = $tree;
    $n = ($n->{ $i % $_ } //= {}) for 2 .. 5;
    push @{ $n->{list} }, $i;
}
my $leaves = 0;
my @stack = ($tree);
while (my $n = pop @stack) {
    for my $k (keys %$n) {
        if ($k eq 'list') { $leaves += @{ $n->{$k} } } else { push @stack, $n->{$k} }
    }
}
print "tree leaves $leaves\n";

my $big = '';
$big .= chr(65 + $_ % 26) for 1 .. 1_000_000;
print "big ", length($big), " ", substr($big, 500_000, 10), "\n";
