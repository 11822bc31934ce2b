#!/usr/bin/perl
# GCC 12 destroys a braced temporary in a co_await expression twice (a
# double free, seen in this tree three times). This check fails on any
# `co_await f(..., {...})` or `co_await f({...})` under the folders given:
# name the object first. Lambdas (`[...](...) { ... }` arguments) are fine.
use strict;
use warnings;
use File::Find;

my @hits;
find(sub {
  return unless /\.(cpp|hpp)$/;
  my $file = $File::Find::name;
  open(my $fh, '<', $_) or die "$file: $!";
  local $/;
  my $text = <$fh>;
  close $fh;
  while ($text =~ /co_await\s([^;]*?);/gs) {
    my $expression = $1;
    my $line = 1 + (substr($text, 0, $-[0]) =~ tr/\n//);
    next if $expression =~ /\]\s*\(/;  # a lambda argument
    next unless $expression =~ /[(,]\s*\{/;
    (my $flat = $expression) =~ s/\s+/ /g;
    push @hits, "$file:$line: co_await $flat";
  }
}, @ARGV);

if (@hits) {
  print "braced temporaries in co_await expressions (GCC 12 destroys them twice):\n";
  print "  $_\n" for @hits;
  exit 1;
}
print "no braced temporaries in co_await expressions\n";
exit 0;
