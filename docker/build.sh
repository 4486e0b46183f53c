#!/bin/sh
# Build arbor's container images without any registry: each image is FROM
# scratch and holds only the arbor binaries it needs, every shared library
# `ldd` lists for them, the ELF loader, a minimal /etc (a non-root user
# arbor, uid/gid 10001) and a /tmp with mode 1777. Classic `docker build`.
#
#   docker/build.sh [--no-build] [--build-dir DIR] [--tag TAG] [--test-helpers] [IMAGE...]
#
# IMAGE is broker, supervisor or arborctl (default: all three). Images are
# tagged ${ARBOR_IMAGE_PREFIX:-arbor/}IMAGE:${ARBOR_IMAGE_TAG:-dev}
# (arbor/broker:dev, arbor/supervisor:dev, arbor/arborctl:dev).
#
# The binaries are built first (cmake, incremental) unless --no-build is
# given (for callers that built them already, e.g. a CMake target); the
# build dir is ${ARBOR_BUILD_DIR:-<repo>/build}. Each image's rootfs is
# staged in <build dir>/docker/IMAGE/ as rootfs.tar (deterministic, so an
# unchanged image is a cache hit) and passed to `docker build` with ADD.
# --test-helpers adds /arbor-test-escaper (tests/escaper/, static) to the
# supervisor image: a worker whose children try to outlive their node, for
# test_compose.py; images for use leave it out.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build_dir=${ARBOR_BUILD_DIR:-$src/build}
tag=${ARBOR_IMAGE_TAG:-dev}
prefix=${ARBOR_IMAGE_PREFIX:-arbor/}
do_build=1
test_helpers=0
images=

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case $1 in
    --no-build) do_build=0 ;;
    --build-dir) build_dir=${2:?--build-dir needs a directory}; shift ;;
    --build-dir=*) build_dir=${1#*=} ;;
    --tag) tag=${2:?--tag needs a value}; shift ;;
    --tag=*) tag=${1#*=} ;;
    --test-helpers) test_helpers=1 ;;
    -h | --help) usage; exit 0 ;;
    broker | supervisor | arborctl) images="$images $1" ;;
    *) echo "build.sh: unknown argument \"$1\" (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$images" ] || images="broker supervisor arborctl"
build_dir=$(mkdir -p "$build_dir" && cd "$build_dir" && pwd)
bin=$build_dir/bin

die() { echo "build.sh: $*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker is not installed"

# One build at a time per build dir: the binaries and the staging dirs
# (build dir/docker/IMAGE) are shared, and CTest runs test_compose and
# test_swarm in parallel. flock is released when this script exits.
if command -v flock >/dev/null 2>&1; then
    mkdir -p "$build_dir/docker"
    exec 9>"$build_dir/docker/.build.lock"
    flock -w 600 9 || die "another docker/build.sh held $build_dir/docker/.build.lock for 600 s"
fi

# -- 1. binaries ------------------------------------------------------------
if [ "$do_build" = 1 ]; then
    if [ ! -f "$build_dir/CMakeCache.txt" ]; then
        cmake -S "$src" -B "$build_dir" >/dev/null || die "cmake configure failed"
    fi
    # Only the programs that go into images: a broken unit test elsewhere
    # must not stop the images from being built.
    helpers=
    [ "$test_helpers" = 0 ] || helpers=arbor-test-escaper
    # shellcheck disable=SC2086
    cmake --build "$build_dir" -j"$(nproc 2>/dev/null || echo 2)" --target \
        arbor-broker arbor-supervisor arbor-forkserver arborctl arbor-example-worker $helpers >/dev/null ||
        die "building the binaries failed (run: cmake --build $build_dir)"
fi

# -- 2. one rootfs per image ----------------------------------------------
programs_of() {
    case $1 in
    broker) echo "arbor-broker arborctl" ;;          # arborctl: the healthcheck
    supervisor)
        echo "arbor-supervisor arbor-forkserver arborctl arbor-example-worker"
        [ "$test_helpers" = 0 ] || echo "arbor-test-escaper"
        ;;
    arborctl) echo "arborctl" ;;
    esac
}

# Every file the dynamic loader needs for the given programs: the libraries
# ldd resolves (by the path it names) and the loader itself. A static
# program (the test helper) needs none.
libraries_of() {
    for p in "$@"; do
        if out=$(ldd "$p" 2>&1); then :; else
            case $out in *"not a dynamic executable"*) continue ;; esac
            die "ldd $p failed: $out"
        fi
        if echo "$out" | grep -q "not found"; then
            die "ldd $p: missing libraries:
$(echo "$out" | grep "not found")"
        fi
        echo "$out" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
    done | sort -u
}

stage() {
    image=$1
    dir=$build_dir/docker/$image
    root=$dir/rootfs
    rm -rf "$root"
    mkdir -p "$root/etc" "$root/tmp"
    chmod 1777 "$root/tmp"

    progs=
    for p in $(programs_of "$image"); do
        [ -x "$bin/$p" ] || die "$bin/$p is missing (build first, or drop --no-build)"
        cp "$bin/$p" "$root/$p"
        chmod 0755 "$root/$p"
        progs="$progs $bin/$p"
    done
    # shellcheck disable=SC2086
    for lib in $(libraries_of $progs); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib" # follow symlinks: copy the real file under the listed name
        chmod 0755 "$root$lib"
    done

    cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/:/sbin/nologin
arbor:x:10001:10001:arbor:/tmp:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
EOF
    cat >"$root/etc/group" <<'EOF'
root:x:0:
arbor:x:10001:
nogroup:x:65534:
EOF
    cat >"$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
    # Docker bind-mounts its own /etc/hosts and /etc/resolv.conf over these.
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
    : >"$root/etc/resolv.conf"
    chmod 0644 "$root"/etc/*

    # A deterministic tar: same binaries, same bytes, same image layer.
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
        -C "$root" -cf "$dir/rootfs.tar" . || die "tar of $root failed"
    cp "$here/$image.Dockerfile" "$dir/Dockerfile"
}

# -- 3. images ----------------------------------------------------------------
for image in $images; do
    t0=$(date +%s.%N)
    stage "$image"
    name=$prefix$image:$tag
    # The classic builder's deprecation notice goes to stderr: show it only
    # when the build fails.
    if ! out=$(DOCKER_BUILDKIT=0 docker build -q -t "$name" \
        --label org.opencontainers.image.title="arbor $image" \
        --label "org.opencontainers.image.revision=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        "$build_dir/docker/$image" 2>&1); then
        echo "$out" >&2
        die "docker build of $name failed"
    fi
    size=$(docker image inspect -f '{{.Size}}' "$name")
    t1=$(date +%s.%N)
    awk -v n="$name" -v s="$size" -v a="$t0" -v b="$t1" \
        'BEGIN { printf "built %-26s %5.1f MB  %4.1f s\n", n, s / 1e6, b - a }'
done
