#!/usr/bin/perl
# Checks the monitoring examples against docs/monitoring.md (ctest:
# monitoring.DashboardAndRulesUseDocumentedMetrics):
#
#   * the Grafana dashboard is valid JSON, its panel ids are unique, every
#     panel and query uses the `datasource` variable, and every query is
#     valid PromQL: each is put in a scratch rule file, with the dashboard's
#     variables filled in, and `promtool check rules` parses it;
#   * every metric name the dashboard, the rule file and its unit tests use
#     is one docs/monitoring.md lists in a metrics table (name | type | ...),
#     a histogram's _bucket, _sum and _count included; a histogram's bare
#     name in a dashboard query is an error (it has no such series);
#   * every recorded series (level:metric:operations) they use is recorded
#     by the rule file and named in docs/monitoring.md.
#
# Only core Perl modules, so it runs wherever the build does.
#
# Usage: check_monitoring.pl PROMTOOL DOCS RULES RULE_TESTS DASHBOARD
use strict;
use warnings;
use File::Temp qw(tempfile);
use JSON::PP;

@ARGV == 5 or die "usage: $0 PROMTOOL DOCS RULES RULE_TESTS DASHBOARD\n";
my ($promtool, $docs_path, $rules_path, $tests_path, $dashboard_path) = @ARGV;

my @errors;
sub error { push @errors, join('', @_) }

sub slurp {
  my ($path) = @_;
  open(my $fh, '<', $path) or die "$path: $!\n";
  local $/;
  return scalar <$fh>;
}

# The metrics docs/monitoring.md lists: table rows whose first cell is a
# metric name in backticks and whose second is its type.
my $docs = slurp($docs_path);
my %type_of;
while ($docs =~ /^\|\s*`((?:kalavara|process)_[a-z0-9_]+)`\s*\|\s*(counter|gauge|histogram)\s*\|/mg) {
  $type_of{$1} = $2;
}
error("$docs_path: no metrics table found") unless %type_of;

my $rules = slurp($rules_path);
my %recorded = map { $_ => 1 } ($rules =~ /^\s*-?\s*record:\s*(\S+)\s*$/mg);

# A metric name stands alone: not inside a recorded series' name.
my $metric_re = qr/(?<![\w:])((?:kalavara|process)_[a-z0-9_]+)(?![\w:])/;
my $recorded_re = qr/(?<![\w:])([a-z_]+:[a-z0-9_]+:[a-z0-9_]+)(?![\w:])/;

sub check_names {
  my ($where, $text, $bare_histograms_are_errors) = @_;
  my %seen;
  while ($text =~ /$metric_re/g) {
    my $name = $1;
    next if $seen{$name}++;
    if (my $type = $type_of{$name}) {
      error("$where: $name is a histogram: use ${name}_bucket, _sum or _count")
        if $type eq 'histogram' && $bare_histograms_are_errors;
      next;
    }
    if ($name =~ /^(.+)_(bucket|sum|count)$/ && ($type_of{$1} // '') eq 'histogram') {
      $seen{$1} = 1;
      next;
    }
    error("$where: $name is not listed in $docs_path");
  }
  while ($text =~ /$recorded_re/g) {
    my $name = $1;
    next if $seen{$name}++;
    error("$where: $name is not recorded by $rules_path") unless $recorded{$name};
    error("$where: $name is not named in $docs_path") unless index($docs, "`$name`") >= 0;
  }
  return keys %seen;
}

check_names($rules_path, $rules, 0);
check_names($tests_path, slurp($tests_path), 0);

# The dashboard.
my $dashboard = eval { JSON::PP->new->decode(slurp($dashboard_path)) };
if (!$dashboard) {
  error("$dashboard_path: not valid JSON: $@");
} else {
  my (@panels, @queries, %ids);
  my @todo = @{ $dashboard->{panels} // [] };
  while (my $panel = shift @todo) {
    push @panels, $panel;
    push @todo, @{ $panel->{panels} // [] };
  }
  error("$dashboard_path: no panels") unless @panels;
  for my $panel (@panels) {
    my $title = $panel->{title} // '(untitled)';
    my $id = $panel->{id};
    error("$dashboard_path: panel '$title' has no id") unless defined $id;
    error("$dashboard_path: panel id $id is used twice") if defined $id && $ids{$id}++;
    error("$dashboard_path: panel '$title' has no gridPos") unless $panel->{gridPos};
    next if ($panel->{type} // '') eq 'row';
    my @targets = @{ $panel->{targets} // [] };
    error("$dashboard_path: panel '$title' has no queries") unless @targets;
    for my $source ($panel->{datasource}, map { $_->{datasource} } @targets) {
      my $uid = ref $source eq 'HASH' ? $source->{uid} // '' : '';
      error("$dashboard_path: panel '$title' does not use \${datasource}") if $uid ne '${datasource}';
    }
    for my $target (@targets) {
      my $expr = $target->{expr} // '';
      error("$dashboard_path: panel '$title' has a query without expr") if $expr eq '';
      push @queries, ["panel '$title'", $expr];
    }
  }
  for my $variable (@{ $dashboard->{templating}{list} // [] }) {
    next unless ($variable->{type} // '') eq 'query';
    my $query = $variable->{query};
    $query = $query->{query} if ref $query eq 'HASH';
    # label_values(METRIC{...}, label) is Grafana's, not PromQL: check its
    # selector.
    if (($query // '') =~ /^label_values\((.+),\s*\w+\)$/) {
      push @queries, ["variable '$variable->{name}'", $1];
    } else {
      error("$dashboard_path: variable '$variable->{name}' is not a label_values query");
    }
  }

  my %used;
  my ($fh, $scratch) = tempfile('kalavara-dashboard-XXXXXX', SUFFIX => '.yml', TMPDIR => 1, UNLINK => 1);
  print $fh "groups:\n  - name: dashboard\n    rules:\n";
  my $n = 0;
  for my $query (@queries) {
    my ($where, $expr) = @$query;
    $used{$_} = 1 for check_names("$dashboard_path: $where", $expr, 1);
    (my $promql = $expr) =~ s/\$\{?__rate_interval\}?/5m/g;
    $promql =~ s/\$\{?(master|volume)\}?/.+/g;
    error("$dashboard_path: $where uses an unknown variable: $1") if $promql =~ /(\$\{?\w+\}?)/;
    $promql =~ s/^/          /mg;
    $n++;
    print $fh "      - record: dashboard:query_$n:check\n        # $where\n        expr: |\n$promql\n";
  }
  close $fh;
  my $output = qx{"$promtool" check rules "$scratch" 2>&1};
  error("$dashboard_path: promtool rejects a query:\n$output") if $? != 0;

  my @unused = sort grep { !$used{$_} } keys %type_of;
  print "note: documented metrics not on the dashboard: @unused\n" if @unused;
  printf "checked %d panels and %d queries\n", scalar @panels, scalar @queries;
}

if (@errors) {
  print STDERR "$_\n" for @errors;
  exit 1;
}
printf "all metric names are among the %d in %s\n", scalar keys %type_of, $docs_path;
