#!/bin/sh
# Make the CURVE keys of a swarm (or Kubernetes) deployment of arbor in DIR:
#
#   docker/swarm-keys.sh [--arborctl PATH] DIR
#
#   DIR/broker.cert, broker.cert_secret          the broker's key pair
#   DIR/supervisor.cert, supervisor.cert_secret  one key shared by every
#                                                supervisor task (see below)
#   DIR/operator.cert, operator.cert_secret      a client key: the
#                                                healthchecks and the cli service
#   DIR/allow/supervisor.cert, allow/operator.cert  the broker's allow directory
#
# docker/arbor-stack.yml turns them into Docker secrets (the *_secret files
# and broker.cert) and configs (the public certificates of the allow
# directory); deploy/k8s/ into Secrets (docs/DEPLOY.md).
#
# Why one supervisor key with no name: a global service runs one supervisor
# per node, each named after its node, from one service definition, so the
# names are not known when the keys are made. The allow directory's copy of
# supervisor.cert has its "name" removed: the broker then lets that key
# register any supervisor name (and its workers' names), never a client's
# (docs/SECURITY.md, "Keys, names and roles"). The supervisor's own copy
# loses its name too, so it does not warn that its certificate names
# another supervisor. Give each node a key of its own (and a service per
# node) where supervisors must not be able to speak for each other.
#
# Uses arborctl keygen (default: build/bin/arborctl, else arborctl in PATH,
# else the arbor/arborctl image through docker run). Refuses a DIR that
# already holds keys.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
ctl=

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "swarm-keys.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case $1 in
    --arborctl) ctl=${2:?--arborctl needs a path}; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "swarm-keys.sh: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
    *) break ;;
    esac
    shift
done
[ $# -eq 1 ] || { usage >&2; exit 2; }
dir=$1
[ ! -e "$dir/broker.cert" ] || die "$dir already holds keys (remove it first)"
mkdir -p "$dir/allow"
chmod 0700 "$dir"
chmod 0755 "$dir/allow"
dir=$(cd "$dir" && pwd)

if [ -z "$ctl" ]; then
    if [ -x "${ARBOR_BUILD_DIR:-$src/build}/bin/arborctl" ]; then
        ctl=${ARBOR_BUILD_DIR:-$src/build}/bin/arborctl
    elif command -v arborctl >/dev/null 2>&1; then
        ctl=arborctl
    fi
fi

keygen() { # NAME ROLE
    if [ -n "$ctl" ]; then
        "$ctl" keygen "$1" --role "$2" --dir "$dir" >/dev/null 2>&1 ||
            die "arborctl keygen $1 failed"
    else
        docker run --rm --user "$(id -u):$(id -g)" -v "$dir:/keys" \
            "${ARBOR_IMAGE_PREFIX:-arbor/}arborctl:${ARBOR_IMAGE_TAG:-dev}" \
            keygen "$1" --role "$2" --dir /keys >/dev/null 2>&1 ||
            die "arborctl keygen $1 (in the arborctl image) failed"
    fi
}

keygen broker broker
keygen supervisor supervisor
keygen operator client

# The shared supervisor key: no "name" metadata (any supervisor name).
for f in "$dir/supervisor.cert" "$dir/supervisor.cert_secret"; do
    sed '/^[[:space:]]*name = /d' "$f" >"$f.tmp" && cat "$f.tmp" >"$f" && rm -f "$f.tmp"
done
cp "$dir/supervisor.cert" "$dir/operator.cert" "$dir/allow/"
chmod 0644 "$dir"/allow/*.cert "$dir/broker.cert" "$dir/supervisor.cert" "$dir/operator.cert"
chmod 0600 "$dir"/*.cert_secret
echo "swarm-keys.sh: keys in $dir (broker, supervisor, operator; allow/)"
