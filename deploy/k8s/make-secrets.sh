#!/bin/sh
# Print the Kubernetes Secrets of arbor's CURVE keys, from a directory made
# by docker/swarm-keys.sh (the same keys serve a swarm and a cluster):
#
#   docker/swarm-keys.sh /path/to/keys
#   deploy/k8s/make-secrets.sh /path/to/keys | kubectl apply -f -
#
# arbor-broker-key     broker.cert, broker.cert_secret   (the broker; peers
#                                                         mount broker.cert only)
# arbor-supervisor-key supervisor.cert, supervisor.cert_secret
# arbor-operator-key   operator.cert, operator.cert_secret (probes, the cli)
# arbor-allow          the broker's allow directory (public certificates)
set -eu
[ $# -eq 1 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
dir=$1
for f in broker.cert broker.cert_secret supervisor.cert supervisor.cert_secret \
    operator.cert operator.cert_secret allow/supervisor.cert allow/operator.cert; do
    [ -r "$dir/$f" ] || { echo "make-secrets.sh: $dir/$f is missing (made by docker/swarm-keys.sh?)" >&2; exit 1; }
done

b64() { base64 -w0 <"$1"; }

secret() { # NAME FILE...
    name=$1
    shift
    printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: arbor\n' "$name"
    printf '  labels: {app.kubernetes.io/part-of: arbor}\ntype: Opaque\ndata:\n'
    for f in "$@"; do
        printf '  %s: %s\n' "$(basename "$f")" "$(b64 "$f")"
    done
}

secret arbor-broker-key "$dir/broker.cert" "$dir/broker.cert_secret"
secret arbor-supervisor-key "$dir/supervisor.cert" "$dir/supervisor.cert_secret"
secret arbor-operator-key "$dir/operator.cert" "$dir/operator.cert_secret"
secret arbor-allow "$dir/allow/supervisor.cert" "$dir/allow/operator.cert"
