#!/bin/sh
# cmake --install into a temporary prefix, then build examples/ against
# the installed library two ways, as a user would, and run them:
#   pkg-config --cflags --libs scpkit (shared library) and --static;
#   a CMake project with find_package(scpkit) (tests/install/consumer).
# Usage: install_test.sh BUILD_DIR SOURCE_DIR CC CMAKE
set -u
B=$1 SRC=$2 CC=$3 CMAKE=$4
T=$(mktemp -d /tmp/scpkit-install.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
. "$SRC/tests/lib.sh"
P=$T/prefix

expect 0 "$CMAKE" --install "$B" --prefix "$P"
LIBDIR=$(dirname "$(find "$P" -name scpkit.pc | head -1)")/..
for f in include/scpkit/scpkit.h include/scpkit/scp03.h include/scpkit/crypto.h; do
    [ -f "$P/$f" ] && ok || bad "$f not installed"
done
for f in libscpkit.a libscpkit-pcsc.a libscpkit-card.a pkgconfig/scpkit.pc \
         pkgconfig/scpkit-pcsc.pc pkgconfig/scpkit-card.pc cmake/scpkit/scpkitConfig.cmake \
         cmake/scpkit/scpkitTargets.cmake cmake/scpkit/scpkitConfigVersion.cmake; do
    [ -f "$LIBDIR/$f" ] && ok || bad "lib/$f not installed"
done
# libscpkit.so -> libscpkit.so.MAJOR -> libscpkit.so.MAJOR.MINOR.PATCH
[ -L "$LIBDIR/libscpkit.so" ] && ok || bad "no libscpkit.so link"
ls "$LIBDIR"/libscpkit.so.[0-9]* >/dev/null 2>&1 && ok || bad "no libscpkit.so.MAJOR"
ls "$LIBDIR"/libscpkit.so.[0-9]*.[0-9]*.[0-9]* >/dev/null 2>&1 && ok || bad "no libscpkit.so.VERSION"

export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
expect 0 pkg-config --exists scpkit scpkit-pcsc scpkit-card
# the engine's link line names libcrypto (privately) and nothing of
# pcsc-lite, SQLite, json-c or PKCS#11
expect 0 pkg-config --libs --static scpkit
hasnt "$T/out" pcsclite
hasnt "$T/out" sqlite
hasnt "$T/out" json
for ex in engine_demo many_sessions; do
    # shared
    expect 0 sh -c "$CC -Wall -Wextra -Werror -std=c11 -o '$T/$ex' '$SRC/examples/$ex.c' \
        \$(pkg-config --cflags --libs scpkit)"
    LD_LIBRARY_PATH="$LIBDIR" expect 0 "$T/$ex"
    # static: libscpkit.a and what pkg-config --static adds
    expect 0 sh -c "$CC -Wall -Wextra -Werror -std=c11 -o '$T/$ex-static' '$SRC/examples/$ex.c' \
        \$(pkg-config --cflags scpkit) '$LIBDIR/libscpkit.a' \$(pkg-config --libs-only-l --static scpkit | sed 's/-lscpkit//')"
    expect 0 "$T/$ex-static"
done
# the version the library reports is the project's
VERSION=$(pkg-config --modversion scpkit)
cat >"$T/v.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <scpkit/scpkit.h>
int main(void)
{
    printf("%s\n", scp_version());
    return strcmp(scp_version(), SCP_VERSION_STRING) != 0;
}
C
expect 0 sh -c "$CC -Wall -Werror -o '$T/v' '$T/v.c' \$(pkg-config --cflags --libs scpkit)"
LD_LIBRARY_PATH="$LIBDIR" expect 0 "$T/v"
has "$T/out" "^$VERSION\$"

# CMake: find_package(scpkit) in a project of its own
expect 0 "$CMAKE" -S "$SRC/tests/install/consumer" -B "$T/consumer" -DCMAKE_C_COMPILER="$CC" \
    -DCMAKE_PREFIX_PATH="$P" -DSCP_EXAMPLES="$SRC/examples"
expect 0 "$CMAKE" --build "$T/consumer"
for ex in engine_demo many_sessions engine_demo_static; do
    LD_LIBRARY_PATH="$LIBDIR" expect 0 "$T/consumer/$ex"
done
finish install_and_build_examples
