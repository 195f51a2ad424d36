#!/usr/bin/perl
# test/lint/qualified_sql.pl — SQL run by the extension resolves no name
# through the caller's search_path.
#
# The SQL texts the C code prepares (src/*.c) run as the table owner, and the
# bodies of the SQL-level functions (the install script sql/orders--X.sql and
# the upgrade scripts sql/orders--A--B.sql after it) run with whatever rights
# they have.  A type, function, relation or collation named without a schema
# is looked up through search_path, where pg_temp comes first for types and
# relations and any schema of the caller may come before pg_catalog: a
# pg_temp domain named int8 or a public.sum(integer) would then run the
# attacker's code with the owner's rights.  This lint finds such names:
#
#   cast        expr::name, CAST(expr AS name), name 'literal' (typed literal)
#   call        name(...)          — also left(), right(), format(), ...
#   relation    FROM/JOIN/INTO/UPDATE/TABLE/LOCK/TRUNCATE name
#   collation   COLLATE name
#   declare     PL/pgSQL DECLARE-section types (v text; r record; t tab%ROWTYPE)
#
# A name is fine when it is schema-qualified (pg_catalog.int8, orders.x) or
# when the grammar itself resolves it in pg_catalog: the SQL keyword types of
# PostgreSQL 15's gram.y (rules Numeric, Bit, Character, ConstDatetime,
# ConstInterval) and the syntax forms that look like calls (COALESCE(, CAST(,
# EXISTS (, IN (, ANY (, FILTER (, OVER (, ...).  See %TYPE_KEYWORD and
# %CALL_SYNTAX below.
#
# Exempt: DO blocks (they run at install time), LANGUAGE c/internal functions,
# and SQL-standard bodies (BEGIN ATOMIC ... END, RETURN expr), which are
# parsed once at CREATE FUNCTION time, names bound to OIDs then (--atomic
# checks them too).  Dynamic SQL is checked only when it is a string literal
# right after EXECUTE; printf-style directives (%s) in C texts are opaque.
# Not checked: argument and result types of CREATE FUNCTION (resolved at
# install time), DDL inside bodies, operators (--operators reports them:
# every operator not written OPERATOR(schema.op), and IN (...), IS DISTINCT
# FROM, BETWEEN, LIKE, NULLIF and simple CASE, which look "=" & co. up by
# name).  Bodies that pin exactly SET search_path = pg_catalog, pg_temp are
# checked for relations outside pg_catalog only (--strict: in full): there
# pg_catalog comes first for types, functions, operators and collations, and
# functions and operators are never looked up in pg_temp; run as the owner
# from C they see pg_catalog alone (src/security.c).
#
# Usage:  perl test/lint/qualified_sql.pl [--root DIR] [--atomic] [--operators] [--verbose]
#         perl test/lint/qualified_sql.pl --self-test
# Exit 0 and a one-line summary when clean, 1 and one "file:line: message
# (context)" line per violation otherwise, 2 on a usage or parse error.
# Perl 5.36 with core modules only.
use v5.36;
use strict;
use warnings;
use File::Basename qw(basename dirname);
use File::Spec;
use File::Temp qw(tempdir);
use Getopt::Long qw(GetOptions);
use Cwd qw(abs_path);

# ---------------------------------------------------------------------------
# PostgreSQL 15 keywords (src/include/parser/kwlist.h of 15.x; --self-test
# compares them with the installed kwlist.h when it can find one).
# ---------------------------------------------------------------------------
my %KW = (
    reserved => [qw(
        all analyse analyze and any array as asc asymmetric both case cast check
        collate column constraint create current_catalog current_date current_role
        current_time current_timestamp current_user default deferrable desc distinct
        do else end except false fetch for foreign from grant group having in
        initially intersect into lateral leading limit localtime localtimestamp not
        null offset on only or order placing primary references returning select
        session_user some symmetric table then to trailing true union unique user
        using variadic when where window with)],
    col_name => [qw(
        between bigint bit boolean char character coalesce dec decimal exists
        extract float greatest grouping inout int integer interval least national
        nchar none normalize nullif numeric out overlay position precision real row
        setof smallint substring time timestamp treat trim values varchar
        xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces
        xmlparse xmlpi xmlroot xmlserialize xmltable)],
    type_func_name => [qw(
        authorization binary collation concurrently cross current_schema freeze
        full ilike inner is isnull join left like natural notnull outer overlaps
        right similar tablesample verbose)],
    unreserved => [qw(
        abort absolute access action add admin after aggregate also alter always
        asensitive assertion assignment at atomic attach attribute backward before
        begin breadth by cache call called cascade cascaded catalog chain
        characteristics checkpoint class close cluster columns comment comments
        commit committed compression configuration conflict connection constraints
        content continue conversion copy cost csv cube current cursor cycle data
        database day deallocate declare defaults deferred definer delete delimiter
        delimiters depends depth detach dictionary disable discard document domain
        double drop each enable encoding encrypted enum escape event exclude
        excluding exclusive execute explain expression extension external family
        filter finalize first following force forward function functions generated
        global granted groups handler header hold hour identity if immediate
        immutable implicit import include including increment index indexes inherit
        inherits inline input insensitive insert instead invoker isolation key label
        language large last leakproof level listen load local location lock locked
        logged mapping match matched materialized maxvalue merge method minute
        minvalue mode month move name names new next nfc nfd nfkc nfkd no normalized
        nothing notify nowait nulls object of off oids old operator option options
        ordinality others over overriding owned owner parallel parameter parser
        partial partition passing password plans policy preceding prepare prepared
        preserve prior privileges procedural procedure procedures program
        publication quote range read reassign recheck recursive ref referencing
        refresh reindex relative release rename repeatable replace replica reset
        restart restrict return returns revoke role rollback rollup routine routines
        rows rule savepoint schema schemas scroll search second security sequence
        sequences serializable server session set sets share show simple skip
        snapshot sql stable standalone start statement statistics stdin stdout
        storage stored strict strip subscription support sysid system tables
        tablespace temp template temporary text ties transaction transform trigger
        truncate trusted type types uescape unbounded uncommitted unencrypted unknown
        unlisten unlogged until update vacuum valid validate validator value varying
        version view views volatile whitespace within without work wrapper write xml
        year yes zone)],
);
# PL/pgSQL keywords (src/pl/plpgsql/src/pl_reserved_kwlist.h and
# pl_unreserved_kwlist.h of 15.x)
my @PLPGSQL_KW = qw(
    all begin by case declare else end execute for foreach from if in into loop
    not null or strict then to using when while
    absolute alias and array assert backward call chain close collate column
    column_name commit constant constraint constraint_name continue current cursor
    datatype debug default detail diagnostics do dump elseif elsif errcode error
    exception exit fetch first forward get hint import info insert is last log
    merge message message_text move next no notice open option perform pg_context
    pg_datatype_name pg_exception_context pg_exception_detail pg_exception_hint
    print_strict_params prior query raise relative return returned_sqlstate
    reverse rollback row_count rowtype schema schema_name scroll slice sqlstate
    stacked table table_name type use_column use_variable variable_conflict warning);

my %KWCAT;                      # word => category
for my $cat (keys %KW) { $KWCAT{$_} = $cat for @{ $KW{$cat} } }
my %ANY_KEYWORD = map { $_ => 1 } (keys %KWCAT, @PLPGSQL_KW);

# Type names the grammar turns into pg_catalog types itself (gram.y rules
# Numeric, Bit, Character, ConstDatetime, ConstInterval).  "double" only as
# "double precision"; json is a keyword type from PostgreSQL 16 only.
my %TYPE_KEYWORD = map { $_ => 1 } qw(
    int integer smallint bigint real float decimal dec numeric boolean
    bit character char varchar national nchar timestamp time interval);

# Words whose "(" opens syntax, not a call looked up through search_path:
# every reserved and column-name keyword (they cannot name a function
# without a schema: COALESCE, EXISTS, EXTRACT, ROW, VALUES, NUMERIC(p,s), ...
# become pg_catalog calls or plain syntax), the type/function-name keywords
# that are join or predicate syntax, and the unreserved or PL/pgSQL words
# that take a parenthesis as syntax.
my %CALL_SYNTAX = map { $_ => 1 } (
    @{ $KW{reserved} }, @{ $KW{col_name} },
    qw(authorization binary collation concurrently cross freeze full ilike inner
       is isnull join like natural notnull outer similar verbose),
    qw(filter over conflict set sets cube rollup operator repeatable include
       varying zone by key materialized nothing first next groups rows range
       partition search cycle value),
    qw(if elsif elseif while return perform assert query exit continue raise
       execute strict loop foreach slice open fetch move close get reverse
       exception notice warning info log debug using),
);

# Words after which a string literal is not a typed literal "type 'value'".
my %BEFORE_STRING_OK = map { $_ => 1 } (
    @{ $KW{reserved} }, @{ $KW{col_name} }, @{ $KW{type_func_name} },
    qw(zone escape uescape by value set at),
    qw(raise exception notice warning info log debug execute return query
       perform assert elsif elseif if while sqlstate message detail hint errcode
       strict),
);

# Call-like syntax whose FROM does not introduce a relation.
my %FROM_IN_CALL = map { $_ => 1 } qw(extract substring trim overlay normalize);

# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------
my %opt = (root => undef, atomic => 0, operators => 0, strict => 0, verbose => 0, self_test => 0);
GetOptions(
    'root=s'    => \$opt{root},
    'atomic'    => \$opt{atomic},
    'operators' => \$opt{operators},
    'strict'    => \$opt{strict},
    'verbose|v' => \$opt{verbose},
    'self-test' => \$opt{self_test},
    'help|h'    => sub { print_usage(); exit 0 },
) or do { print_usage(); exit 2 };

sub print_usage {
    print STDERR <<~'EOT';
    usage: qualified_sql.pl [--root DIR] [--atomic] [--operators] [--strict] [--verbose]
           qualified_sql.pl --self-test
      --root DIR   repository root (default: two levels above this script)
      --atomic     also check BEGIN ATOMIC / RETURN bodies (bound at CREATE time)
      --operators  also report operators not written OPERATOR(schema.op), and
                   IN (, IS DISTINCT FROM, BETWEEN, LIKE, NULLIF, simple CASE
      --strict     check bodies pinned to search_path = pg_catalog, pg_temp in
                   full too (by default only their relations outside pg_catalog)
      --verbose    list every SQL text and function body checked
    EOT
}

# ---------------------------------------------------------------------------
# SQL lexer
# ---------------------------------------------------------------------------

# lex_sql(text) — tokens of an SQL (or PL/pgSQL) text.  Comments vanish,
# every string literal (standard, E'', B'', X'', N'', U&'', dollar-quoted)
# is one 'str' token, so words inside literals are never seen as names; a
# cast after a literal is still seen.  Token: {t => type, v => value, pos =>
# start offset, end => offset after it}; for 'str' also content (the
# unescaped value) and cmap (offset in text of each character of content).
sub lex_sql ($s) {
    my @tk;
    my $len = length $s;
    pos($s) = 0;
    while (pos($s) < $len) {
        my $p = pos($s);
        if ($s =~ /\G\s+/gc) { next }
        if ($s =~ /\G--[^\n]*/gc) { next }
        if ($s =~ /\G\/\*/gc) {
            my $depth = 1;
            while ($depth > 0 && pos($s) < $len) {
                if    ($s =~ /\G\/\*/gc) { $depth++ }
                elsif ($s =~ /\G\*\//gc) { $depth-- }
                else                     { $s =~ /\G(?:[^\/*]+|.)/gcs }
            }
            next;
        }
        # E'...' : backslash escapes
        if ($s =~ /\G[eE]'/gc) {
            my ($content, @cmap) = ('');
            while (pos($s) < $len) {
                my $q = pos($s);
                if    ($s =~ /\G''/gc)        { $content .= "'"; push @cmap, $q }
                elsif ($s =~ /\G'/gc)         { last }
                elsif ($s =~ /\G\\(.)/gcs) {
                    my $c = $1;
                    $content .= $c eq 'n' ? "\n" : $c eq 't' ? "\t" : $c eq 'r' ? "\r" : $c;
                    push @cmap, $q;
                }
                else { $s =~ /\G(.)/gcs; $content .= $1; push @cmap, $q }
            }
            push @tk, { t => 'str', v => 'E', pos => $p, end => pos($s), content => $content, cmap => \@cmap };
            next;
        }
        # '...', B'...', X'...', N'...', U&'...' : '' is a quote
        if ($s =~ /\G(?:[bBxXnN]|[uU]&)?'/gc) {
            my ($content, @cmap) = ('');
            while (pos($s) < $len) {
                my $q = pos($s);
                if    ($s =~ /\G''/gc)     { $content .= "'"; push @cmap, $q }
                elsif ($s =~ /\G'/gc)      { last }
                else { $s =~ /\G(.)/gcs; $content .= $1; push @cmap, $q }
            }
            push @tk, { t => 'str', v => "'", pos => $p, end => pos($s), content => $content, cmap => \@cmap };
            next;
        }
        # $tag$ ... $tag$
        if ($s =~ /\G(\$(?:[A-Za-z_\x80-\xff][A-Za-z_0-9\x80-\xff]*)?\$)/gc) {
            my $tag   = $1;
            my $start = pos($s);
            my $close = index($s, $tag, $start);
            $close = $len if $close < 0;
            my $content = substr($s, $start, $close - $start);
            push @tk, { t => 'str', v => $tag, pos => $p, end => $close + length($tag),
                        content => $content, cmap => [ $start .. $close - 1 ] };
            pos($s) = $close + length($tag) > $len ? $len : $close + length($tag);
            next;
        }
        if ($s =~ /\G\$(\d+)/gc) { push @tk, { t => 'param', v => $1, pos => $p, end => pos($s) }; next }
        if ($s =~ /\G(?:[uU]&)?"((?:[^"]|"")*)"/gc) {
            (my $v = $1) =~ s/""/"/g;
            push @tk, { t => 'qid', v => $v, pos => $p, end => pos($s) };
            next;
        }
        if ($s =~ /\G([A-Za-z_\x80-\xff][A-Za-z_0-9\$\x80-\xff]*)/gc) {
            push @tk, { t => 'id', v => lc $1, raw => $1, pos => $p, end => pos($s) };
            next;
        }
        if ($s =~ /\G(\d+(?:\.(?!\.)\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/gc) {
            push @tk, { t => 'num', v => $1, pos => $p, end => pos($s) };
            next;
        }
        if ($s =~ /\G(::|:=|=>|\.\.)/gc) { push @tk, { t => 'p', v => $1, pos => $p, end => pos($s) }; next }
        if ($s =~ /\G([(),;\[\].:])/gc)  { push @tk, { t => 'p', v => $1, pos => $p, end => pos($s) }; next }
        if ($s =~ /\G((?:(?!--|\/\*)[+\-*\/<>=~!@#%^&|`?])+)/gc) {
            push @tk, { t => 'op', v => $1, pos => $p, end => pos($s) };
            next;
        }
        $s =~ /\G(.)/gcs;
        push @tk, { t => 'other', v => $1, pos => $p, end => pos($s) };
    }
    return @tk;
}

sub is_p    ($t, $v) { return defined $t && $t->{t} eq 'p'  && $t->{v} eq $v }
sub is_id   ($t, @w) { return defined $t && $t->{t} eq 'id' && (!@w || grep { $t->{v} eq $_ } @w) }
sub is_name ($t)     { return defined $t && ($t->{t} eq 'id' || $t->{t} eq 'qid') }
sub shown   ($t)     { return $t->{t} eq 'qid' ? qq("$t->{v}") : ($t->{raw} // $t->{v}) }

# matching(tokens, i) — index of the ")" closing the "(" at i (or the last).
sub matching ($tk, $i) {
    my $depth = 0;
    for my $j ($i .. $#$tk) {
        next unless $tk->[$j]{t} eq 'p';
        $depth++ if $tk->[$j]{v} eq '(';
        $depth-- if $tk->[$j]{v} eq ')';
        return $j if $depth == 0;
    }
    return $#$tk;
}

# dotted_name(tokens, i) — (parts, index of last part) of name.name... at i.
sub dotted_name ($tk, $i) {
    my @parts = ($tk->[$i]);
    my $j = $i;
    while (is_p($tk->[$j + 1], '.') && is_name($tk->[$j + 2])) {
        push @parts, $tk->[$j + 2];
        $j += 2;
    }
    return (\@parts, $j);
}

# type_verdict(tokens, i) — (ok, shown name, index after the name) for the
# type name starting at token i; ok undef when no type name is there.
sub type_verdict ($tk, $i) {
    my $t = $tk->[$i];
    $t = $tk->[++$i] if is_id($t, 'setof');
    return (undef, '', $i) unless is_name($t);
    if ($t->{t} eq 'id' && $TYPE_KEYWORD{ $t->{v} }) { return (1, $t->{v}, $i + 1) }
    if (is_id($t, 'double') && is_id($tk->[$i + 1], 'precision')) { return (1, 'double precision', $i + 2) }
    my ($parts, $last) = dotted_name($tk, $i);
    my $name = join '.', map { shown($_) } @$parts;
    return (@$parts > 1 ? 1 : 0, $name, $last + 1);
}

# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------

# check_sql(text, lines, ctx) — violations in one SQL text.  lines: the source
# line of each character of text.  ctx: lang (sql | plpgsql), rel_ok (names
# of transition tables etc. that may stay unqualified).  Returns a list of
# {line, kind, what}.
sub check_sql ($text, $lines, $ctx = {}) {
    my @tk   = lex_sql($text);
    my @out;
    my $line = sub ($t) { $lines->[ $t->{pos} ] // $lines->[-1] // 0 };
    my $flag = sub ($t, $kind, $what) { push @out, { line => $line->($t), kind => $kind, what => $what } };

    # names of common table expressions (and windows): name [(cols)] AS [NOT] [MATERIALIZED] (
    my %cte;
    for my $i (0 .. $#tk) {
        next unless is_name($tk[$i]);
        my $j = $i + 1;
        $j = matching(\@tk, $j) + 1 if is_p($tk[$j], '(');
        next unless is_id($tk[$j], 'as');
        $j++;
        $j++ if is_id($tk[$j], 'not');
        $j++ if is_id($tk[$j], 'materialized');
        $cte{ $tk[$i]{v} } = 1 if is_p($tk[$j], '(');
    }
    my %rel_ok = (%cte, map { $_ => 1 } @{ $ctx->{rel_ok} // [] });

    # the "(" matching each ")"
    my (%open_of, @stack);
    for my $i (0 .. $#tk) {
        push @stack, $i if is_p($tk[$i], '(');
        $open_of{$i} = pop @stack if is_p($tk[$i], ')') && @stack;
    }

    my @opener;                 # the word before each enclosing "("
    my @from_list;              # depths at which a FROM list is open
    my %ends_from = map { $_ => 1 } qw(where group order having limit offset window union
        intersect except returning for into on using set values select loop then fetch);

    for my $i (0 .. $#tk) {
        my $t    = $tk[$i];
        my $prev = $i > 0 ? $tk[ $i - 1 ] : undef;
        my $next = $tk[ $i + 1 ];

        if (is_p($t, '(')) { push @opener, (is_id($prev) ? $prev->{v} : ''); next }
        if (is_p($t, ')')) {
            pop @from_list while @from_list && $from_list[-1] >= @opener;
            pop @opener;
            next;
        }
        if (is_p($t, ';') || (is_id($t) && $ends_from{ $t->{v} })) {
            pop @from_list while @from_list && $from_list[-1] >= @opener;
        }

        # (a) expr::type
        if (is_p($t, '::')) {
            my ($ok, $name) = type_verdict(\@tk, $i + 1);
            $flag->($tk[ $i + 1 ] // $t, 'cast', "::$name") if defined $ok && !$ok;
            next;
        }
        # (a) CAST(expr AS type), TREAT(expr AS type)
        if (is_id($t, 'cast', 'treat') && is_p($next, '(')) {
            my $close = matching(\@tk, $i + 1);
            my ($depth, $as) = (0, undef);
            for my $j ($i + 1 .. $close) {
                $depth++ if is_p($tk[$j], '(');
                $depth-- if is_p($tk[$j], ')');
                $as = $j if $depth == 1 && is_id($tk[$j], 'as');
            }
            if (defined $as) {
                my ($ok, $name) = type_verdict(\@tk, $as + 1);
                $flag->($tk[ $as + 1 ], 'cast', uc($t->{v}) . "(... AS $name)") if defined $ok && !$ok;
            }
        }
        # (a) typed literal: name 'value'
        if (is_name($t) && defined $next && $next->{t} eq 'str' && !is_p($prev, '.')
            && !($t->{t} eq 'id' && $BEFORE_STRING_OK{ $t->{v} })) {
            $flag->($t, 'cast', shown($t) . " '...' (typed literal)");
        }
        # (b) calls
        if (is_name($t) && is_p($next, '(')) {
            my $name = shown($t);
            my $after_group = sub {       # ") name(" is an alias unless ")" closes DISTINCT ON (
                my $o = $open_of{ $i - 1 };
                !(defined $o && $o >= 2 && is_id($tk[ $o - 1 ], 'on') && is_id($tk[ $o - 2 ], 'distinct'));
            };
            my $skip =
                   is_p($prev, '.')                                        # schema.name(
                || ($t->{t} eq 'id' && $CALL_SYNTAX{ $t->{v} })            # syntax
                || is_id($prev, 'as')                                      # AS alias(cols)
                || (is_p($prev, ')') && $after_group->())                  # (...) alias(cols)
                || ($prev && $prev->{t} eq 'qid')                          # "tab" alias(cols)
                || ($prev && $prev->{t} eq 'id' && !$ANY_KEYWORD{ $prev->{v} })   # tab alias(cols)
                || (is_id($prev, 'into') && $i >= 2 && is_id($tk[ $i - 2 ], 'insert', 'merge'))
                || ($cte{ $t->{v} } && is_id($tk[ matching(\@tk, $i + 1) + 1 ], 'as'));  # WITH name(cols) AS (
            # INSERT INTO name (cols): the relation check below reports the name
            $flag->($t, 'call', "$name(") unless $skip;
            # AS x(a type, ...): a column definition list names types
            if ($skip && !is_p($prev, '.') && !($t->{t} eq 'id' && $CALL_SYNTAX{ $t->{v} })) {
                my $close = matching(\@tk, $i + 1);
                my ($depth, $item) = (0, $i + 2);
                for my $j ($i + 2 .. $close) {
                    $depth++ if is_p($tk[$j], '(');
                    $depth-- if is_p($tk[$j], ')') && $j < $close;
                    next unless $j == $close || ($depth == 0 && is_p($tk[$j], ','));
                    if ($j - $item >= 2 && is_name($tk[$item])) {
                        my ($ok, $tn) = type_verdict(\@tk, $item + 1);
                        $flag->($tk[ $item + 1 ], 'cast', "$name(... $tn) (column definition)") if defined $ok && !$ok;
                    }
                    $item = $j + 1;
                }
            }
        }
        # (d) COLLATE name
        if (is_id($t, 'collate') && is_name($next)) {
            my ($parts) = dotted_name(\@tk, $i + 1);
            $flag->($next, 'collation', 'COLLATE ' . shown($next)) if @$parts == 1;
        }
        # (e) relations: FROM x, y / JOIN x / INSERT INTO x / UPDATE x / TABLE x / LOCK x / TRUNCATE x
        my $rel_at;
        my $v = $t->{t} eq 'id' ? $t->{v} : $t->{t} eq 'p' ? $t->{v} : '';
        my $stmt_start = !$prev || is_p($prev, ';') || is_p($prev, '(')
            || is_id($prev, 'as', 'then', 'else', 'loop', 'begin', 'materialized');
        if ($v eq 'from' && $t->{t} eq 'id') {
            my $o = @opener ? $opener[-1] : '';
            unless ($FROM_IN_CALL{$o}
                    || is_id($prev, 'distinct', 'next', 'prior', 'first', 'last', 'forward', 'backward', 'fetch', 'move', 'rows')) {
                $rel_at = $i + 1;
                push @from_list, scalar @opener;
            }
        }
        elsif ($v eq ',' && @from_list && $from_list[-1] == @opener) { $rel_at = $i + 1 }
        elsif ($v eq 'join')     { $rel_at = $i + 1 }
        elsif ($v eq 'into')     { $rel_at = $i + 1 if is_id($prev, 'insert', 'merge') }
        elsif ($v eq 'update')   { $rel_at = $i + 1 if $stmt_start }        # not FOR UPDATE, ON UPDATE
        elsif ($v eq 'truncate' || $v eq 'lock' || $v eq 'table') { $rel_at = $i + 1 if $stmt_start }
        if (defined $rel_at) {
            $rel_at++ while is_id($tk[$rel_at], 'only', 'lateral', 'table');
            my $r = $tk[$rel_at];
            if (is_name($r) && !($v =~ /^(?:from|join|,)$/ && is_p($tk[ $rel_at + 1 ], '('))
                && !($r->{t} eq 'id' && ($KWCAT{ $r->{v} } // '') eq 'reserved')
                && !(is_id($r, 'rows') && is_id($tk[ $rel_at + 1 ], 'from'))) {
                my ($parts) = dotted_name(\@tk, $rel_at);
                $flag->($r, 'relation', ($v eq ',' ? 'FROM ..., ' : uc($v) . ' ') . shown($r))
                    if @$parts == 1 && !$rel_ok{ $r->{v} };
            }
        }
        # EXECUTE 'constant SQL': check the SQL in the literal
        if (($ctx->{lang} // '') eq 'plpgsql' && is_id($t, 'execute') && $next && $next->{t} eq 'str'
            && (!$tk[ $i + 2 ] || is_p($tk[ $i + 2 ], ';') || is_id($tk[ $i + 2 ], 'into', 'using', 'loop'))) {
            my @inner_lines = map { $lines->[$_] } @{ $next->{cmap} };
            for my $v (check_sql($next->{content}, \@inner_lines, { %$ctx, lang => 'sql' })) {
                $v->{what} .= ' in EXECUTE string';
                push @out, $v;
            }
        }
    }

    # (c) PL/pgSQL DECLARE sections
    my %decl_eq;                # "=" that starts a default value, not an operator
    if (($ctx->{lang} // '') eq 'plpgsql') {
        for my $i (0 .. $#tk) {
            next unless is_id($tk[$i], 'declare');
            my $j = $i + 1;
            while ($j <= $#tk && !is_id($tk[$j], 'begin')) {
                # one declaration: name [CONSTANT] type [COLLATE c] [NOT NULL] [{DEFAULT | := | =} expr];
                my $start = $j;
                my $end   = $j;
                my $depth = 0;
                while ($end <= $#tk) {
                    $depth++ if is_p($tk[$end], '(');
                    $depth-- if is_p($tk[$end], ')');
                    last if $depth == 0 && is_p($tk[$end], ';');
                    $end++;
                }
                for my $e ($start .. $end - 1) {
                    if ($tk[$e]{t} eq 'op' && $tk[$e]{v} eq '=') { $decl_eq{$e} = 1; last }
                }
                my $k = $start + 1;
                $k++ if is_id($tk[$k], 'constant');
                if (is_name($tk[$start]) && $k < $end
                    && !is_id($tk[$k], 'alias', 'cursor', 'no', 'scroll')) {
                    my ($parts, $last) = is_name($tk[$k]) ? dotted_name(\@tk, $k) : ([], $k);
                    my $after = $tk[ $last + 1 ];
                    if (@$parts && $after && $after->{t} eq 'op' && $after->{v} eq '%'
                        && is_id($tk[ $last + 2 ], 'type', 'rowtype')) {
                        my $what = join('.', map { shown($_) } @$parts) . '%' . uc $tk[ $last + 2 ]{v};
                        # v%TYPE names a variable, s.t.c%TYPE and s.t%ROWTYPE are
                        # qualified; t.c%TYPE and t%ROWTYPE find table t through
                        # search_path (unless t is a variable of the function)
                        my $unqualified = $tk[ $last + 2 ]{v} eq 'type' ? @$parts == 2 : @$parts == 1;
                        $flag->($tk[$k], 'declare', shown($tk[$start]) . " $what") if $unqualified;
                    }
                    else {
                        my ($ok, $name) = type_verdict(\@tk, $k);
                        $flag->($tk[$k], 'declare', shown($tk[$start]) . " $name") if defined $ok && !$ok;
                    }
                }
                $j = $end + 1;
            }
        }
    }
    push @out, check_operators(\@tk, \%decl_eq, $line, $ctx) if $ctx->{operators};
    return @out;
}

# check_operators(tokens, decl_eq, line, ctx) — (--operators) operators looked
# up through search_path: every operator not written OPERATOR(schema.op), and
# the syntax that looks one up by name: IN (list or subquery) and NULLIF and
# simple CASE and IS DISTINCT FROM use "=", BETWEEN ">=" and "<=", LIKE "~~",
# ILIKE "~~*", SIMILAR TO "~".  Not operators: * as a star, = of UPDATE SET,
# of PL/pgSQL assignments, of RAISE ... USING and of DECLARE defaults, the
# sign of a numeric constant, <<label>>, %TYPE, and C format directives.
sub check_operators ($tk, $decl_eq, $line, $ctx) {
    my @out;
    my $flag = sub ($t, $what) { push @out, { line => $line->($t), kind => 'operator', what => $what } };
    my @set_depth;              # paren depths of open UPDATE ... SET clauses
    my $depth = 0;
    my %after_value = map { $_ => 1 } qw(id qid num param str);
    for my $i (0 .. $#$tk) {
        my ($t, $prev, $next) = ($tk->[$i], $i > 0 ? $tk->[ $i - 1 ] : undef, $tk->[ $i + 1 ]);
        my $p2 = $i > 1 ? $tk->[ $i - 2 ] : undef;
        $depth++ if is_p($t, '(');
        if (is_p($t, ')')) { $depth--; pop @set_depth while @set_depth && $set_depth[-1] > $depth }
        pop @set_depth while @set_depth && $set_depth[-1] == $depth
            && (is_p($t, ';') || is_id($t, 'where', 'from', 'returning'));
        push @set_depth, $depth if is_id($t, 'set');
        if ($t->{t} eq 'op') {
            my $v = $t->{v};
            next if is_p($prev, '.');                                             # OPERATOR(pg_catalog.=)
            next if $v eq '*' && (!$prev || is_p($prev, '(') || is_p($prev, ',')
                                  || is_id($prev, 'select', 'distinct', 'all', 'returning'));
            next if $v eq '%' && $next && $next->{t} eq 'id'
                    && ($next->{v} =~ /^(?:type|rowtype)$/ || ($ctx->{c} && $next->{v} =~ /^(?:s|d|i|u|ld|lu|lld|llu|zu|x)$/));
            next if $v eq '<<' && is_name($next) && ($tk->[ $i + 2 ]{v} // '') eq '>>';
            next if $v eq '>>' && is_name($prev) && ($p2->{v} // '') eq '<<';
            if ($v eq '=') {
                next if $decl_eq->{$i};
                next if is_name($prev) && @set_depth && $set_depth[-1] == $depth
                        && (is_id($p2, 'set') || is_p($p2, ','));                # UPDATE ... SET c = v, d = w
                next if is_p($prev, ')') && @set_depth && $set_depth[-1] == $depth;  # SET (a, b) = (...)
                next if is_name($prev) && (!$p2 || is_p($p2, ';') || is_id($p2, 'begin', 'then', 'else', 'loop', 'diagnostics'));
                next if is_id($prev, 'errcode', 'message', 'detail', 'hint', 'column', 'constraint', 'datatype', 'table', 'schema')
                        && (is_id($p2, 'using') || is_p($p2, ','));
            }
            next if ($v eq '-' || $v eq '+') && $next && $next->{t} eq 'num'
                    && !($prev && ($after_value{ $prev->{t} } && !($prev->{t} eq 'id' && $ANY_KEYWORD{ $prev->{v} })
                                   || is_p($prev, ')') || is_p($prev, ']')));
            $flag->($t, $v);
            next;
        }
        next unless $t->{t} eq 'id';
        my $v = $t->{v};
        if ($v eq 'in' && is_p($next, '(') && !is_id($p2, 'for', 'foreach')) { $flag->($t, 'IN (...) (=)') }
        elsif ($v eq 'distinct' && is_id($next, 'from'))                      { $flag->($t, 'IS DISTINCT FROM (=)') }
        elsif ($v eq 'nullif' && is_p($next, '('))                            { $flag->($t, 'NULLIF (=)') }
        elsif ($v eq 'case' && $next && !is_id($next, 'when') && !is_id($prev, 'end')) { $flag->($t, 'CASE x WHEN (=)') }
        elsif ($v eq 'between')                                               { $flag->($t, 'BETWEEN (>=, <=)') }
        elsif ($v eq 'like' || $v eq 'ilike')                                 { $flag->($t, uc($v) . ($v eq 'like' ? ' (~~)' : ' (~~*)')) }
        elsif ($v eq 'similar' && is_id($next, 'to'))                         { $flag->($t, 'SIMILAR TO (~)') }
    }
    return @out;
}

# ---------------------------------------------------------------------------
# SQL texts of the C code
# ---------------------------------------------------------------------------

# c_sql_texts(file) — every group of adjacent string literals of a C file
# whose text starts with SELECT/INSERT/UPDATE/DELETE/WITH (any case), except
# the message argument of errmsg()/elog() & co.  Returns
# [{text, lines, line}].
sub c_sql_texts ($file) {
    my $src = slurp($file);
    my @groups;                  # [{text, lines, start}]
    my $len  = length $src;
    my $line = 1;
    my $cur;                     # group being built
    my $i = 0;
    my $close = sub { push @groups, $cur if $cur; undef $cur };
    while ($i < $len) {
        my $c = substr($src, $i, 1);
        if ($c eq "\n") { $line++; $i++; next }
        if ($c =~ /\s/) { $i++; next }
        if (substr($src, $i, 2) eq '//') {
            my $e = index($src, "\n", $i);
            $e = $len if $e < 0;
            $i = $e;
            next;
        }
        if (substr($src, $i, 2) eq '/*') {
            my $e = index($src, '*/', $i + 2);
            $e = $len - 2 if $e < 0;
            $line += (substr($src, $i, $e + 2 - $i) =~ tr/\n//);
            $i = $e + 2;
            next;
        }
        if ($c eq "'") {         # character constant
            $close->();
            $i++;
            while ($i < $len && substr($src, $i, 1) ne "'") { $i += substr($src, $i, 1) eq '\\' ? 2 : 1 }
            $i++;
            next;
        }
        if ($c eq '"') {
            $cur //= { text => '', lines => [], start => $i, line => $line };
            $i++;
            while ($i < $len) {
                my $d = substr($src, $i, 1);
                last if $d eq '"';
                if ($d eq '\\') {
                    my $e = substr($src, $i + 1, 1);
                    if ($e eq "\n") { $line++; $i += 2; next }      # line continuation
                    my $out = $e eq 'n' ? "\n" : $e eq 't' ? "\t" : $e eq 'r' ? "\r" : $e;
                    $cur->{text} .= $out;
                    push @{ $cur->{lines} }, $line;
                    $i += 2;
                    next;
                }
                $line++ if $d eq "\n";
                $cur->{text} .= $d;
                push @{ $cur->{lines} }, $line;
                $i++;
            }
            $i++;
            next;
        }
        $close->();
        $i++;
    }
    $close->();

    my @texts;
    for my $g (@groups) {
        next unless $g->{text} =~ /\A\s*(?:SELECT|INSERT|UPDATE|DELETE|WITH)\b/i;
        my $before = substr($src, $g->{start} > 200 ? $g->{start} - 200 : 0,
                            $g->{start} > 200 ? 200 : $g->{start});
        next if $before =~ /\b(?:errmsg|errmsg_internal|errmsg_plural|errdetail|errdetail_internal|errdetail_log|errhint|errcontext|elog|ereport)\s*\(\s*(?:[A-Z_]+\s*,\s*)?\z/;
        push @texts, $g;
    }
    return @texts;
}

# ---------------------------------------------------------------------------
# Function bodies of the install chain
# ---------------------------------------------------------------------------

# sql_statements(text) — statements of an SQL script: [first token index,
# last token index] over the tokens of the script (psql meta-commands are
# blanked before lexing).  BEGIN ATOMIC ... END holds its own semicolons.
sub sql_statements ($tk) {
    my @st;
    my ($start, $depth, $atomic) = (0, 0, 0);
    for my $i (0 .. $#$tk) {
        my $t = $tk->[$i];
        if ($atomic) {
            $atomic++ if is_id($t, 'begin', 'case');
            $atomic-- if is_id($t, 'end');
            next;
        }
        if (is_id($t, 'begin') && is_id($tk->[ $i + 1 ], 'atomic')) { $atomic = 1; next }
        $depth++ if is_p($t, '(');
        $depth-- if is_p($t, ')');
        if (is_p($t, ';') && $depth <= 0) {
            push @st, [ $start, $i - 1 ] if $i > $start;
            ($start, $depth) = ($i + 1, 0);
        }
    }
    push @st, [ $start, $#$tk ] if $start <= $#$tk;
    return @st;
}

my %TYPE_ALIAS = (
    int => 'int4', integer => 'int4', int4 => 'int4', bigint => 'int8', smallint => 'int2',
    boolean => 'bool', real => 'float4', 'double precision' => 'float8', float => 'float8',
    decimal => 'numeric', dec => 'numeric', 'character varying' => 'varchar',
    character => 'bpchar', char => 'bpchar',
    'timestamp with time zone' => 'timestamptz', 'timestamp without time zone' => 'timestamp',
    'time with time zone' => 'timetz', 'time without time zone' => 'time',
);

# identity_args(tokens, open, close) — normalized identity argument types of a
# CREATE/DROP FUNCTION argument list (names, modes, defaults, OUT arguments
# and type modifiers dropped; keyword spellings mapped to catalog names).
sub identity_args ($tk, $open, $close) {
    my (@args, @cur);
    my $depth = 0;
    for my $j ($open + 1 .. $close) {
        my $t = $tk->[$j];
        if ($j == $close || ($depth == 0 && is_p($t, ','))) {
            push @args, [@cur] if @cur;
            @cur = ();
            next;
        }
        $depth++ if is_p($t, '(') || is_p($t, '[');
        $depth-- if is_p($t, ')') || is_p($t, ']');
        push @cur, $t;
    }
    my @types;
    for my $a (@args) {
        my @w = @$a;
        # cut DEFAULT / = expression
        for my $k (0 .. $#w) {
            if (is_id($w[$k], 'default') || ($w[$k]{t} eq 'op' && $w[$k]{v} eq '=')) { splice @w, $k; last }
        }
        my $mode = 'in';
        if (@w && is_id($w[0], 'in', 'out', 'inout', 'variadic')) { $mode = $w[0]{v}; shift @w }
        next if $mode eq 'out';
        # drop a leading argument name
        if (@w > 1 && is_name($w[0]) && !is_p($w[1], '.')
            && !is_id($w[0], qw(double character char national nchar bit timestamp time interval setof))) {
            shift @w;
        }
        my $type = join ' ', map { $_->{t} eq 'p' && $_->{v} eq '.' ? '.' : $_->{v} } @w;
        $type =~ s/ ?\. ?/./g;
        $type =~ s/\s*\([^)]*\)//g;          # type modifiers
        $type =~ s/^pg_catalog\.//;
        $type =~ s/\s*\[\s*\]/[]/g;
        my $arr = $type =~ s/(\[\])+$// ? '[]' : '';
        $type = $TYPE_ALIAS{$type} // $type;
        push @types, $type . $arr;
    }
    return join ',', @types;
}

# script_functions(file, functions, drop) — apply one script to the set of
# current functions: CREATE [OR REPLACE] FUNCTION/PROCEDURE replaces the
# entry of its name and identity arguments, DROP FUNCTION/PROCEDURE/ROUTINE
# removes it (all overloads when no argument list is given).  Also returns
# the transition-table names of CREATE TRIGGER ... REFERENCING.
sub apply_script ($file, $funcs, $transition) {
    my $src = slurp($file);
    (my $blanked = $src) =~ s/^(\\[^\n]*)/' ' x length($1)/gme;   # psql meta-commands
    my @tk    = lex_sql($blanked);
    my @lines = line_map($src);
    for my $st (sql_statements(\@tk)) {
        my ($a, $b) = @$st;
        my @s = @tk[ $a .. $b ];
        next unless @s;
        if (is_id($s[0], 'create')) {
            my $k = 1;
            $k += 2 if is_id($s[1], 'or') && is_id($s[2], 'replace');
            if (is_id($s[$k], 'trigger') || (is_id($s[$k], 'constraint') && is_id($s[ $k + 1 ], 'trigger'))) {
                for my $j (0 .. $#s - 2) {
                    next unless is_id($s[$j], 'old', 'new') && is_id($s[ $j + 1 ], 'table');
                    my $n = is_id($s[ $j + 2 ], 'as') ? $s[ $j + 3 ] : $s[ $j + 2 ];
                    $transition->{ $n->{v} } = 1 if is_name($n);
                }
                next;
            }
            next unless is_id($s[$k], 'function', 'procedure');
            my $kind = $s[$k]{v};
            my ($parts, $last) = dotted_name(\@s, $k + 1);
            my $name  = join '.', map { $_->{v} } @$parts;
            my $open  = $last + 1;
            next unless is_p($s[$open], '(');
            my $close = matching(\@s, $open);
            my %f = (name => $name, kind => $kind, file => $file, line => $lines[ $s[0]{pos} ],
                     args => identity_args(\@s, $open, $close), lang => 'sql', pinned => 0,
                     definer => 0, body => undef, atomic => 0);
            my $depth = 0;
            for (my $j = $close + 1; $j <= $#s; $j++) {
                my $t = $s[$j];
                $depth++ if is_p($t, '(');
                $depth-- if is_p($t, ')');
                next if $depth;
                if (is_id($t, 'language') && $s[ $j + 1 ]) {
                    $f{lang} = lc($s[ $j + 1 ]{t} eq 'str' ? $s[ $j + 1 ]{content} : $s[ $j + 1 ]{v});
                }
                elsif (is_id($t, 'security') && is_id($s[ $j + 1 ], 'definer')) { $f{definer} = 1 }
                elsif (is_id($t, 'set') && is_id($s[ $j + 1 ], 'search_path')) {
                    # pinned: exactly SET search_path = pg_catalog, pg_temp (or TO)
                    my @path;
                    for (my $k = $j + 3; $s[$k]; $k += 2) {
                        my $n = $s[$k];
                        push @path, lc($n->{t} eq 'str' ? $n->{content} : $n->{v});
                        last unless is_p($s[ $k + 1 ], ',');
                    }
                    $f{pinned} = "@path" eq 'pg_catalog pg_temp' ? 1 : 0;
                }
                elsif (is_id($t, 'as') && $s[ $j + 1 ] && $s[ $j + 1 ]{t} eq 'str' && !defined $f{body}) {
                    my $str = $s[ $j + 1 ];
                    $f{body}  = $str->{content};
                    $f{lines} = [ map { $lines[$_] } @{ $str->{cmap} } ];
                    $f{c_symbol} = 1 if is_p($s[ $j + 2 ], ',');
                }
                elsif ((is_id($t, 'begin') && is_id($s[ $j + 1 ], 'atomic')) || is_id($t, 'return')) {
                    my $from = $t->{pos};
                    my $to   = $b + 1 <= $#tk ? $tk[ $b + 1 ]{pos} : length $blanked;
                    $f{body}   = substr($blanked, $from, $to - $from);
                    $f{lines}  = [ map { $lines[$_] } $from .. $to - 1 ];
                    $f{atomic} = 1;
                    last;
                }
            }
            $f{body_line} = $f{lines} && @{ $f{lines} } ? $f{lines}[0] : $f{line};
            $funcs->{"$name($f{args})"} = \%f;
        }
        elsif (is_id($s[0], 'drop') && is_id($s[1], 'function', 'procedure', 'routine')) {
            my $j = 2;
            $j += 2 if is_id($s[2], 'if') && is_id($s[3], 'exists');
            while ($j <= $#s && is_name($s[$j])) {
                my ($parts, $last) = dotted_name(\@s, $j);
                my $name = join '.', map { $_->{v} } @$parts;
                $j = $last + 1;
                if (is_p($s[$j], '(')) {
                    my $close = matching(\@s, $j);
                    delete $funcs->{ $name . '(' . identity_args(\@s, $j, $close) . ')' };
                    $j = $close + 1;
                }
                else {
                    delete $funcs->{$_} for grep { /^\Q$name\E\(/ } keys %$funcs;
                }
                last unless is_p($s[$j], ',');
                $j++;
            }
        }
    }
}

# install_chain(root) — the scripts CREATE EXTENSION and ALTER EXTENSION
# UPDATE run, in order: each full script sql/orders--V.sql (lowest first),
# then the upgrade scripts sql/orders--A--B.sql from V onwards (when two
# leave one version, the one going furthest).  Upgrade scripts no chain
# reaches are returned as unreached.
sub version_cmp ($x, $y) {
    my @a = split /\./, $x;
    my @b = split /\./, $y;
    while (@a || @b) {
        my ($p, $q) = (shift(@a) // 0, shift(@b) // 0);
        my $c = ($p =~ /^\d+$/ && $q =~ /^\d+$/) ? $p <=> $q : $p cmp $q;
        return $c if $c;
    }
    return 0;
}

sub install_chains ($root) {
    my (@full, @upgrades);
    for my $path (glob("$root/sql/orders--*.sql")) {
        my $b = basename($path);
        if    ($b =~ /^orders--([^-]+(?:-[^-]+)*?)--([^-]+(?:-[^-]+)*?)\.sql$/) { push @upgrades, [ $1, $2, $path ] }
        elsif ($b =~ /^orders--(.+)\.sql$/)                                  { push @full, [ $1, $path ] }
    }
    @full     = sort { version_cmp($a->[0], $b->[0]) } @full;
    @upgrades = sort { version_cmp($a->[0], $b->[0]) || version_cmp($a->[1], $b->[1]) } @upgrades;
    my (@chains, %used);
    for my $f (@full) {
        my @chain = ($f->[1]);
        my $v = $f->[0];
        while (1) {
            my @next = grep { version_cmp($_->[0], $v) == 0 } @upgrades;
            last unless @next;
            my $u = $next[-1];
            push @chain, $u->[2];
            $used{ $u->[2] } = 1;
            $v = $u->[1];
        }
        push @chains, { from => $f->[0], to => $v, scripts => \@chain };
    }
    my @unreached = map { $_->[2] } grep { !$used{ $_->[2] } } @upgrades;
    return (\@chains, \@unreached);
}

# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

sub slurp ($file) {
    open my $fh, '<:raw', $file or die "qualified_sql: cannot read $file: $!\n";
    local $/;
    return scalar <$fh>;
}

# line_map(text) — the line number of each character.
sub line_map ($text) {
    my @l;
    my $n = 1;
    for my $c (split //, $text) { push @l, $n; $n++ if $c eq "\n" }
    return @l;
}

sub source_line ($cache, $file, $line) {
    $cache->{$file} //= [ split /\n/, slurp($file), -1 ];
    my $s = $cache->{$file}[ $line - 1 ] // '';
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\s+/ /g;
    $s = substr($s, 0, 117) . '...' if length $s > 120;
    return $s;
}

my %MESSAGE = (
    cast      => 'type resolved through search_path',
    call      => 'unqualified function call',
    relation  => 'unqualified relation',
    collation => 'unqualified collation',
    declare   => 'PL/pgSQL variable type resolved through search_path',
    operator  => 'operator resolved through search_path',
);

sub main () {
    my $root = $opt{root} // abs_path(File::Spec->catdir(dirname(abs_path($0)), '..', '..'));
    die "qualified_sql: no src/ or sql/ under $root\n" unless -d "$root/src" && -d "$root/sql";
    my $rel = sub ($p) { File::Spec->abs2rel($p, $root) };
    my (@viol, %cache);

    # the function bodies of the install chain(s)
    my ($chains, $unreached) = install_chains($root);
    die "qualified_sql: no install script sql/orders--<version>.sql under $root\n" unless @$chains;
    warn "qualified_sql: warning: upgrade script $_ is on no install chain; not checked\n"
        for map { $rel->($_) } @$unreached;
    my (%funcs, %transition, %seen);
    for my $chain (@$chains) {
        my %cur;
        apply_script($_, \%cur, \%transition) for @{ $chain->{scripts} };
        printf STDERR "qualified_sql: chain %s -> %s: %s\n", $chain->{from}, $chain->{to},
            join(' ', map { basename($_) } @{ $chain->{scripts} }) if $opt{verbose};
        $funcs{ "$_\@$cur{$_}{file}:$cur{$_}{line}" } //= $cur{$_} for keys %cur;
    }

    # src/*.c
    my $n_c = 0;
    for my $file (sort glob("$root/src/*.c")) {
        for my $g (c_sql_texts($file)) {
            $n_c++;
            printf STDERR "qualified_sql: %s:%d: SQL text\n", $rel->($file), $g->{line} if $opt{verbose};
            for my $v (check_sql($g->{text}, $g->{lines}, { lang => 'sql', c => 1, operators => $opt{operators},
                                                            rel_ok => [ keys %transition ] })) {
                push @viol, { %$v, file => $rel->($file), where => '' };
            }
        }
    }

    # sql/ function bodies
    my ($n_bodies, $n_atomic, $n_other) = (0, 0, 0);
    for my $key (sort keys %funcs) {
        my $f = $funcs{$key};
        next unless defined $f->{body};
        next if $f->{c_symbol} || $f->{lang} eq 'c' || $f->{lang} eq 'internal';
        if ($f->{lang} ne 'sql' && $f->{lang} ne 'plpgsql') {
            warn sprintf "qualified_sql: warning: %s:%d: %s is LANGUAGE %s; not checked\n",
                $rel->($f->{file}), $f->{line}, $f->{name}, $f->{lang};
            $n_other++;
            next;
        }
        if ($f->{atomic}) {
            $n_atomic++;
            next unless $opt{atomic};
        }
        else { $n_bodies++ }
        printf STDERR "qualified_sql: %s:%d: %s(%s) LANGUAGE %s%s%s\n", $rel->($f->{file}), $f->{line},
            $f->{name}, $f->{args}, $f->{lang}, $f->{atomic} ? ' (SQL-standard body)' : '',
            $f->{pinned} ? ' SET search_path' : '' if $opt{verbose};
        my @flags = ("$f->{name}()", $f->{pinned} ? 'search_path pinned' : 'search_path NOT pinned');
        push @flags, 'SECURITY DEFINER' if $f->{definer};
        push @flags, 'SQL-standard body, bound at CREATE' if $f->{atomic};
        for my $v (check_sql($f->{body}, $f->{lines}, { lang => $f->{lang}, operators => $opt{operators},
                                                        rel_ok => [ keys %transition ] })) {
            # A body pinned to "pg_catalog, pg_temp" resolves types, functions,
            # operators and collations in pg_catalog first (functions and
            # operators are never looked up in pg_temp), and run as the owner
            # by the C code it sees pg_catalog alone: only a relation outside
            # pg_catalog named without its schema could reach pg_temp.
            next if $f->{pinned} && !$opt{strict} &&
                    !($v->{kind} eq 'relation' && $v->{what} !~ /\bpg_\w+$/);
            push @viol, { %$v, file => $rel->($f->{file}), where => ' in ' . join(', ', @flags),
                          atomic => $f->{atomic} };
        }
    }

    my %dup;
    @viol = grep { !$dup{"$_->{file}:$_->{line}:$_->{kind}:$_->{what}"}++ }
            sort { $a->{file} cmp $b->{file} || $a->{line} <=> $b->{line} } @viol;
    for my $v (@viol) {
        printf "%s:%d: %s: %s%s (%s)\n", $v->{file}, $v->{line}, $MESSAGE{ $v->{kind} }, $v->{what},
            $v->{where}, source_line(\%cache, File::Spec->catfile($root, $v->{file}), $v->{line});
    }
    my $summary = sprintf "qualified_sql: %d SQL texts checked in src/, %d function bodies in sql/%s, %d violation%s",
        $n_c, $n_bodies + ($opt{atomic} ? $n_atomic : 0),
        ($opt{atomic} ? " (incl. $n_atomic SQL-standard bodies)" : ($n_atomic ? " ($n_atomic SQL-standard bodies exempt)" : '')),
        scalar(@viol), @viol == 1 ? '' : 's';
    if (@viol) { print STDERR "$summary\n"; return 1 }
    print "$summary\n";
    return 0;
}

# ---------------------------------------------------------------------------
# --self-test
# ---------------------------------------------------------------------------

sub self_test () {
    my ($n, $fail) = (0, 0);
    my $ok = sub ($cond, $desc, $diag = '') {
        $n++;
        print(($cond ? 'ok' : 'not ok') . " $n - $desc\n");
        print "#   $diag\n" if !$cond && $diag ne '';
        $fail++ unless $cond;
    };
    my $verdict = sub ($sql, $lang = 'sql', $rel_ok = [], $extra = {}) {
        my @l = (1) x (length($sql) || 1);
        return [ map { "$_->{kind}:$_->{what}" } check_sql($sql, \@l, { lang => $lang, rel_ok => $rel_ok, %$extra }) ];
    };
    # [sql, lang, expected violations (kind:what, in order)]
    my @cases = (
        [ 'SELECT count(*)::int8 FROM orders.t',                       'sql', [ 'call:count(', 'cast:::int8' ] ],
        [ 'SELECT pg_catalog.count(*)::pg_catalog.int8 FROM orders.t', 'sql', [] ],
        [ 'SELECT m.order_id FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS m(order_id, sign)', 'sql', [] ],
        [ 'SELECT coalesce(x, 0), nullif(a, b), greatest(1, 2), least(1, 2) FROM orders.t', 'sql', [] ],
        [ q{SELECT 'a'::pg_catalog.text, 'it''s'::text},                'sql', [ 'cast:::text' ] ],
        [ q{SELECT 'count(x)::int8 -- not code'},                      'sql', [] ],
        [ q{SELECT 1 /* sum(x)::int8 */ -- lpad(x)::uuid},             'sql', [] ],
        [ q{SELECT E'\\' now()'::uuid},                                 'sql', [ 'cast:::uuid' ] ],
        [ q{SELECT $q$ now()::int8 $q$::jsonb},                         'sql', [ 'cast:::jsonb' ] ],
        [ 'SELECT x::bigint, y::integer, z::numeric(14,2), w::double precision, v::timestamp with time zone, u::interval, t::character varying(3), s::boolean, r::int[], q::varchar', 'sql', [] ],
        [ 'SELECT x::int4, y::"bigint", z::date, w::timestamptz, v::regclass, u::name[], t::record', 'sql',
          [ 'cast:::int4', 'cast:::"bigint"', 'cast:::date', 'cast:::timestamptz', 'cast:::regclass', 'cast:::name', 'cast:::record' ] ],
        [ 'SELECT CAST(x AS int8), CAST(y AS bigint), CAST(z AS pg_catalog.int8)', 'sql', [ 'cast:CAST(... AS int8)' ] ],
        [ q{SELECT date '2020-01-01', interval '1 day', timestamp '2020-01-01', pg_catalog.date '2020-01-01'}, 'sql', [ q{cast:date '...' (typed literal)} ] ],
        [ q{SELECT x FROM orders.t WHERE y LIKE 'a%' AND z = 'b' AND v IN ('c') AND t AT TIME ZONE 'UTC' > now()}, 'sql', [ 'call:now(' ] ],
        [ 'SELECT lpad(x, 3), format(y), left(z, 1), "sum"(w), orders.f(1), pg_catalog.lpad(x, 3)', 'sql',
          [ 'call:lpad(', 'call:format(', 'call:left(', 'call:"sum"(' ] ],
        [ 'SELECT 1 FROM orders.t WHERE x IN (1) AND EXISTS (SELECT 1) AND y = ANY (ARRAY[1]) AND z = ALL (ARRAY(SELECT 1))', 'sql', [] ],
        [ 'SELECT pg_catalog.count(*) FILTER (WHERE x) OVER (PARTITION BY y), CAST(x AS bigint), EXTRACT(epoch FROM t), SUBSTRING(s FROM 1 FOR 2), POSITION(a IN b), TRIM(BOTH FROM c), OVERLAY(a PLACING b FROM 1), ROW(1, 2) FROM orders.t', 'sql', [] ],
        [ 'WITH hold(a, b) AS (INSERT INTO orders.r (a, b) VALUES (1, 2) RETURNING a, b) UPDATE orders.s c SET n = hold.a FROM hold RETURNING c.id', 'sql', [] ],
        [ 'SELECT v.n FROM (VALUES (1, 2)) v(n, l) JOIN orders.t t(a, b) ON true', 'sql', [] ],
        [ 'SELECT 1 FROM orders.t ORDER BY lower(x)', 'sql', [ 'call:lower(' ] ],
        [ 'SELECT 1 FROM pg_attribute a JOIN orders.t ON true, orders.u', 'sql', [ 'relation:FROM pg_attribute' ] ],
        [ 'INSERT INTO history (a) VALUES (1); UPDATE t SET a = 1; DELETE FROM orders.x; SELECT 1 FROM new_rows', 'sql',
          [ 'relation:INTO history', 'relation:UPDATE t' ], [ 'new_rows' ] ],
        [ 'SELECT a IS DISTINCT FROM b FROM orders.t FOR UPDATE', 'sql', [] ],
        [ 'SELECT x COLLATE "C", y COLLATE pg_catalog."C" FROM orders.t', 'sql', [ 'collation:COLLATE "C"' ] ],
        [ "DECLARE\n  a integer;\n  b text;\n  c orders.staff;\n  d bigint := (SELECT pg_catalog.count(*) FROM orders.t);\n  e CONSTANT numeric(12,2) := 0;\n  f record;\n  g orders.t.col%TYPE;\n  h t%ROWTYPE;\n  i a%TYPE;\n  j name;\n  k double precision;\n  l uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid();\nBEGIN\n  RETURN 1;\nEND", 'plpgsql',
          [ 'declare:b text', 'declare:f record', 'declare:h t%ROWTYPE', 'declare:j name', 'declare:l uuid' ] ],
        [ "BEGIN\n  IF (x) THEN PERFORM pg_catalog.pg_advisory_xact_lock(1); END IF;\n  RAISE EXCEPTION 'x % y', current_database() USING ERRCODE = 'OR001';\n  EXECUTE 'SELECT now()::int8' INTO v;\n  FOREACH r IN ARRAY coalesce(a, '{}'::pg_catalog.name[]) LOOP END LOOP;\nEND", 'plpgsql',
          [ 'call:current_database(', 'call:now( in EXECUTE string', 'cast:::int8 in EXECUTE string' ] ],
        [ 'SELECT DISTINCT ON (a) lower(b) FROM orders.t', 'sql', [ 'call:lower(' ] ],
        [ 'SELECT * FROM orders.f() AS x(a integer, b text), orders.g() y(c pg_catalog.uuid)', 'sql',
          [ 'cast:x(... text) (column definition)' ] ],
        # --operators
        [ q{SELECT 1 FROM orders.t WHERE a = b AND c IN (1) AND d IS DISTINCT FROM e AND f BETWEEN 1 AND 2 AND g LIKE 'x' AND h OPERATOR(pg_catalog.=) i AND -1 < j AND k || l IS NULL},
          'sql', [ 'operator:=', 'operator:IN (...) (=)', 'operator:IS DISTINCT FROM (=)', 'operator:BETWEEN (>=, <=)',
                   'operator:LIKE (~~)', 'operator:<', 'operator:||' ], [], { operators => 1 } ],
        [ 'UPDATE orders.t SET a = 1, b = c OPERATOR(pg_catalog.+) 1 WHERE x OPERATOR(pg_catalog.=) $1 RETURNING *', 'sql', [], [], { operators => 1 } ],
        [ 'SELECT pg_catalog.count(*), t.*, CASE WHEN a THEN 1 END, CASE a WHEN 1 THEN 2 END FROM orders.t %s', 'sql',
          [ 'operator:CASE x WHEN (=)' ], [], { operators => 1, c => 1 } ],
        [ "DECLARE\n  x integer = 1;\nBEGIN\n  x = 2;\n  RAISE EXCEPTION 'e' USING ERRCODE = 'OR001', HINT = 'h';\n  <<l>> LOOP EXIT l WHEN x OPERATOR(pg_catalog.>) 1; END LOOP l;\nEND", 'plpgsql',
          [], [], { operators => 1 } ],
    );
    for my $c (@cases) {
        my ($sql, $lang, $want, $rel_ok, $extra) = @$c;
        my $got = $verdict->($sql, $lang, $rel_ok // [], $extra // {});
        my $g = join(' | ', @$got);
        my $w = join(' | ', @$want);
        (my $short = $sql) =~ s/\s+/ /g;
        $short = substr($short, 0, 70) . '...' if length $short > 73;
        $ok->($g eq $w, "$lang: $short", "got [$g], want [$w]");
    }

    # C extraction: adjacent literals, escapes, messages skipped, line numbers
    my $dir = tempdir(CLEANUP => 1);
    open my $fh, '>', "$dir/x.c" or die $!;
    print $fh <<~'EOC';
    /* "SELECT now()::int8" in a comment */
    static void f(void)
    {
        char c = '"';
        plan("SELECT coalesce(pg_catalog.sum(q), 0)::int8"
             " FROM orders.t WHERE s = 'a\"b' AND \\ IS NULL", c);
        ereport(ERROR, (errmsg("select something(else)")));
        elog(ERROR, "SELECT now()::int8 failed");
        plan("  with r AS (SELECT 1) SELECT count(*)"
             // comment between literals
             "  FROM r", 0);
        plan("DELETE FROM orders.t", 0);
    }
    EOC
    close $fh;
    my @texts = c_sql_texts("$dir/x.c");
    $ok->(@texts == 3, 'C: three SQL texts (comment, char literal, errmsg and elog skipped)', 'got ' . scalar(@texts));
    $ok->(@texts && $texts[0]{text} eq q{SELECT coalesce(pg_catalog.sum(q), 0)::int8 FROM orders.t WHERE s = 'a"b' AND \ IS NULL},
          'C: adjacent literals joined, \\" and \\\\ unescaped', $texts[0]{text} // '');
    my @v0 = @texts ? check_sql($texts[0]{text}, $texts[0]{lines}, { lang => 'sql' }) : ();
    $ok->(@v0 == 1 && $v0[0]{what} eq '::int8' && $v0[0]{line} == 5, 'C: ::int8 reported at its source line',
          join ', ', map { "$_->{line}:$_->{what}" } @v0);
    my @v1 = @texts > 1 ? check_sql($texts[1]{text}, $texts[1]{lines}, { lang => 'sql' }) : ();
    $ok->(@v1 == 1 && $v1[0]{what} eq 'count(' && $v1[0]{line} == 9, 'C: count( in a WITH text, CTE r is no relation',
          join ', ', map { "$_->{line}:$_->{what}" } @v1);

    # install chain: last CREATE wins, DROP removes, DO skipped, BEGIN ATOMIC exempt
    mkdir "$dir/sql";
    mkdir "$dir/src";
    my %scripts = (
        'orders--0.1.0.sql' => <<~'EOS',
            \echo Use "CREATE EXTENSION orders" to load this file. \quit
            CREATE FUNCTION orders.a() RETURNS int LANGUAGE sql AS $$ SELECT now()::int8 $$;
            CREATE FUNCTION orders.b(x integer) RETURNS int LANGUAGE plpgsql AS $f$ BEGIN RETURN lpad(x); END $f$;
            CREATE FUNCTION orders.c() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT count(*)::int8; END;
            CREATE FUNCTION orders.d() RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', 'orders_d';
            DO $$ BEGIN PERFORM now()::int8; END $$;
            CREATE TRIGGER t AFTER INSERT ON orders.t REFERENCING NEW TABLE AS new_things
                FOR EACH STATEMENT EXECUTE FUNCTION orders.d();
            EOS
        'orders--0.1.0--0.2.0.sql' => <<~'EOS',
            CREATE OR REPLACE FUNCTION orders.a() RETURNS int LANGUAGE sql AS $$ SELECT pg_catalog.now()::pg_catalog.int8 $$;
            DROP FUNCTION orders.b(int4);
            EOS
        'orders--0.10.0--0.11.0.sql' => <<~'EOS',
            CREATE FUNCTION orders.e() RETURNS int LANGUAGE sql AS $$ SELECT 1 FROM new_things $$;
            EOS
        'orders--0.2.0--0.10.0.sql' => <<~'EOS',
            CREATE FUNCTION orders.f() RETURNS int LANGUAGE sql AS 'SELECT upper(''x'')';
            EOS
    );
    for my $name (keys %scripts) {
        open my $s, '>', "$dir/sql/$name" or die $!;
        print $s $scripts{$name};
        close $s;
    }
    my ($chains) = install_chains($dir);
    $ok->(@$chains == 1 && join(' ', map { basename($_) } @{ $chains->[0]{scripts} })
          eq 'orders--0.1.0.sql orders--0.1.0--0.2.0.sql orders--0.2.0--0.10.0.sql orders--0.10.0--0.11.0.sql',
          'chain: upgrade scripts in numeric version order',
          join ' ', map { basename($_) } @{ $chains->[0]{scripts} // [] });
    my (%cur, %tr);
    apply_script($_, \%cur, \%tr) for @{ $chains->[0]{scripts} };
    $ok->(join(' ', sort keys %cur) eq 'orders.a() orders.c() orders.d() orders.e() orders.f()',
          'chain: DROP FUNCTION orders.b(int4) removes orders.b(x integer)', join ' ', sort keys %cur);
    $ok->(($cur{'orders.a()'}{body} // '') =~ /pg_catalog\.now/, 'chain: the last CREATE OR REPLACE is the current body');
    $ok->($cur{'orders.c()'}{atomic}, 'chain: BEGIN ATOMIC body recognised');
    $ok->(($cur{'orders.f()'}{body} // '') eq q{SELECT upper('x')}, "chain: AS '...' body unescaped");
    $ok->($tr{new_things}, 'chain: transition table name collected');
    my $rc;
    {
        local *STDOUT;
        local *STDERR;
        open STDOUT, '>', File::Spec->devnull;
        open STDERR, '>', File::Spec->devnull;
        local $opt{root} = $dir;
        $rc = main();
    }
    $ok->($rc == 1, 'main: exits 1 on the fixture', "exit $rc");
    my @fv = map { check_sql($cur{$_}{body}, $cur{$_}{lines}, { lang => $cur{$_}{lang}, rel_ok => [ keys %tr ] }) }
             grep { !$cur{$_}{atomic} && $cur{$_}{lang} ne 'c' } sort keys %cur;
    $ok->(join(' ', map { $_->{what} } @fv) eq 'upper(', "chain: only orders.f's upper( remains",
          join ' ', map { $_->{what} } @fv);

    # the embedded keyword lists against the installed PostgreSQL 15 kwlist.h
    my ($kwlist) = grep { -r } (
        (map { "$_/parser/kwlist.h" } grep { defined && length } (scalar(`pg_config --includedir-server 2>/dev/null`) // '') =~ s/\s+$//r),
        '/usr/include/postgresql/15/server/parser/kwlist.h');
    if ($kwlist && slurp($kwlist) =~ /PG_KEYWORD/) {
        my %got;
        for (split /\n/, slurp($kwlist)) {
            $got{ lc $2 }{$1} = 1 if /^PG_KEYWORD\("([a-z_]+)",\s*\w+,\s*(\w+)_KEYWORD/;
        }
        for my $cat (qw(reserved col_name type_func_name unreserved)) {
            my $have = join ' ', sort @{ $KW{$cat} };
            my $want = join ' ', sort keys %{ $got{$cat} // {} };
            $ok->($have eq $want, "keywords: $cat list matches $kwlist", "differs from $kwlist");
        }
        $ok->(!grep({ ($KWCAT{$_} // '') ne 'col_name' } keys %TYPE_KEYWORD),
              'keywords: every keyword type is a column-name keyword');
    }
    else {
        print "# kwlist.h not found: keyword lists not compared (install postgresql-server-dev-15)\n";
    }

    print "1..$n\n";
    print $fail ? "# $fail of $n self-tests failed\n" : "# all $n self-tests passed\n";
    return $fail ? 1 : 0;
}

# run here, once every table of the file is set
my $rc = eval { $opt{self_test} ? self_test() : main() };
if (!defined $rc) { print STDERR $@; exit 2 }
exit $rc;
