#!/usr/bin/env bash
# libherald_install.sh BUILD_DIR SOURCE_DIR LIBDIR - libherald as a user
# gets it: `cmake --install` into a fresh prefix, examples/consumer.c
# compiled outside the build tree with nothing but what pkg-config says
# about the installed herald.pc, and run; examples/sink_plugin_example.c
# built as a plugin from the installed <herald/sink.h>; the library exports
# only herald_* and needs none of the programs' libraries (YAML, MariaDB).
# LIBDIR is CMAKE_INSTALL_LIBDIR, the (multiarch) libdir GNUInstallDirs
# picked for this build.
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) libdir=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
  { cat "$tmp/install.log" >&2; fail "cmake --install"; }
pcdir=$prefix/$libdir/pkgconfig
lib=$prefix/$libdir/libherald.so
[ -f "$pcdir/herald.pc" ] || fail "no $libdir/pkgconfig/herald.pc in the prefix"
[ -f "$prefix/include/herald/herald.h" ] || fail "no include/herald/herald.h"
[ -f "$prefix/include/herald/sink.h" ] || fail "no include/herald/sink.h"
[ -e "$lib" ] || fail "no $libdir/libherald.so"
for p in herald-relay herald-agent herald-coordinator heraldctl; do
  [ -x "$prefix/bin/$p" ] || fail "no bin/$p"
done

# pkg-config must point into the prefix installed to, not into the
# configured one (/usr/local) or the build tree.
pc() { PKG_CONFIG_PATH=$pcdir pkg-config "$@" herald; }
pc --exists || fail "pkg-config does not find herald in $pcdir"
[ "$(pc --modversion)" = "$("$prefix/bin/heraldctl" --version | awk '{print $NF}')" ] ||
  fail "herald.pc version $(pc --modversion) is not the programs'"
pclibdir=$(cd "$(pc --variable=libdir)" && pwd -P)
[ "$pclibdir" = "$(cd "$prefix/$libdir" && pwd -P)" ] ||
  fail "herald.pc libdir is $(pc --variable=libdir), not $prefix/$libdir"
case " $(pc --cflags) " in
  *" -I$prefix/"*) ;;
  *) fail "herald.pc cflags '$(pc --cflags)' do not name $prefix" ;;
esac

# The example, compiled as a user would, away from the sources.
mkdir "$tmp/user"
cp "$src/examples/consumer.c" "$tmp/user/"
cd "$tmp/user"
# CC and HD_CFLAGS: this build's compiler and sanitizer flags (ctest sets
# them); a plain `cc` otherwise.
# shellcheck disable=SC2046,SC2086 # pkg-config's words are separate arguments
${CC:-cc} -std=c11 -Wall -Wextra -Werror ${HD_CFLAGS:-} -o consumer consumer.c \
  $(pc --cflags --libs) ||
  fail "consumer.c does not compile against the installed herald.pc"
LD_LIBRARY_PATH=$prefix/$libdir ./consumer --help >help.txt ||
  fail "consumer --help exited $?"
grep -q '^Usage: consumer --relays' help.txt || fail "consumer --help: $(cat help.txt)"
loaded=$(LD_LIBRARY_PATH=$prefix/$libdir ldd ./consumer)
case "$loaded" in
  *"=> $prefix/$libdir/libherald.so.0 "*) ;;
  *) fail "consumer does not load the installed libherald: $loaded" ;;
esac

# The example sink plugin, built as a plugin's author would: a shared
# object from the installed <herald/sink.h> alone (a plugin links nothing
# of herald's; the agent resolves herald_sink_plugin at dlopen).
cp "$src/examples/sink_plugin_example.c" "$tmp/user/"
# shellcheck disable=SC2046,SC2086 # pkg-config's words are separate arguments
${CC:-cc} -std=c11 -Wall -Wextra -Werror ${HD_CFLAGS:-} -shared -fPIC \
  -o libsink_example.so sink_plugin_example.c $(pc --cflags) -lpthread ||
  fail "sink_plugin_example.c does not compile against the installed <herald/sink.h>"
nm -D --defined-only libsink_example.so | grep -q ' T herald_sink_plugin$' ||
  fail "the example plugin does not export herald_sink_plugin"

# Only the API is exported (HERALD_0 is the version node, type A), and
# every function the header declares.
nm -D --defined-only "$lib" | awk '$2 != "A" {sub(/@.*/, "", $3); print $2, $3}' |
  sort -u >exports.txt
other=$(awk '$2 !~ /^herald_[a-z]/ {print $2}' exports.txt)
[ -z "$other" ] || fail "libherald.so exports more than herald_*: $other"
missing=$(tr "\n" " " <"$src/libherald/include/herald/herald.h" |
  grep -o "HERALD_API [^(;]*(" | grep -o 'herald_[a-z_]*($' | tr -d '(' | sort -u |
  while read -r f; do grep -qx "T $f" exports.txt || echo "$f"; done)
[ -z "$missing" ] || fail "declared in herald.h but not exported: $missing"
[ "$(wc -l <exports.txt)" -ge 50 ] || fail "only $(wc -l <exports.txt) exports"
needed=$(readelf -d "$lib" | awk '/NEEDED/ {print $NF}' | tr -d '[]')
echo "libherald.so needs: $(echo $needed)"
for n in $needed; do
  case "$n" in
    libyaml* | libmariadb*) fail "libherald.so needs $n: $needed" ;;
  esac
done
echo "ok: installed to $prefix/$libdir, consumer built with pkg-config and run"
