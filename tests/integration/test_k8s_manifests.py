"""Offline checks of the Kubernetes manifests in deploy/k8s/ (no cluster).

  a. every manifest, and the Secrets deploy/k8s/make-secrets.sh prints for
     keys made by docker/swarm-keys.sh, passes `kubernetes-validate --strict`
     (the Kubernetes OpenAPI schemas, offline); a manifest with a misspelt
     field is rejected, so the validator is known to be awake;
  b. arbor's own rules: broker Deployment (1 replica, Recreate) and a
     headless Service "broker"; supervisors a DaemonSet named by the node
     (ARBOR_SUPERVISOR_NAME from spec.nodeName); every container non-root,
     no privilege escalation, ALL capabilities dropped, a read-only root
     filesystem, resource requests and limits, exec probes that run
     arborctl, no liveness probe on the supervisor (it would restart it,
     and its trees with it, during a broker outage); every Secret a pod
     mounts is one make-secrets.sh makes, with the keys the pod names.

kubernetes-validate comes from PyPI into a virtualenv cached in the build
dir (<build>/k8s-validate-venv). When it cannot be installed (no network,
no venv module) the test prints `SKIP test_k8s_manifests: REASON` for (a)
and still runs (b), which needs only python3-yaml."""

import os
import subprocess
import sys

import harness
from harness import BIN, SRC, check, TestFailure

K8S = os.path.join(SRC, "deploy", "k8s")
MANIFESTS = sorted(os.path.join(K8S, f) for f in os.listdir(K8S) if f.endswith(".yaml"))
VALIDATE_VERSION = "1.37.0"  # the package; it validates against Kubernetes 1.37 by default
VENV = os.path.join(os.path.dirname(os.path.abspath(BIN)), "k8s-validate-venv")


def validator():
    """Path of kubernetes-validate (installed on first use), or (None, why)."""
    exe = os.path.join(VENV, "bin", "kubernetes-validate")
    if os.access(exe, os.X_OK):
        return exe, None
    try:
        r = subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            return None, "cannot create a virtualenv (python3-venv missing?): %s" % r.stderr.strip()[-300:]
        r = subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q", "--disable-pip-version-check",
                            "kubernetes-validate==%s" % VALIDATE_VERSION],
                           capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None, "installing kubernetes-validate from PyPI took over the deadline"
    if r.returncode != 0 or not os.access(exe, os.X_OK):
        return None, "pip could not install kubernetes-validate==%s (offline?): %s" % (
            VALIDATE_VERSION, (r.stderr.strip().splitlines() or ["?"])[-1])
    return exe, None


def make_secrets(run):
    keys = os.path.join(run.dir, "keys")
    r = subprocess.run([os.path.join(SRC, "docker", "swarm-keys.sh"), "--arborctl",
                        os.path.join(BIN, "arborctl"), keys], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "swarm-keys.sh: %s%s" % (r.stdout, r.stderr))
    path = os.path.join(run.dir, "secrets.yaml")
    with open(path, "w") as out:
        r = subprocess.run([os.path.join(K8S, "make-secrets.sh"), keys], stdout=out,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    check(r.returncode == 0, "make-secrets.sh: %s" % r.stderr)
    return path


def load_all(paths):
    import yaml
    docs = []
    for p in paths:
        with open(p) as f:
            docs += [(os.path.basename(p), d) for d in yaml.safe_load_all(f) if d]
    return docs


def test_a_kubernetes_validate(run):
    exe, why = validator()
    if not exe:
        print("SKIP test_k8s_manifests (kubernetes-validate): %s" % why)
        return
    files = MANIFESTS + [make_secrets(run)]
    r = subprocess.run([exe, "--strict", "--quiet"] + files, capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "kubernetes-validate --strict failed:\n%s%s" % (r.stdout, r.stderr))
    print("  %d files valid (kubernetes-validate %s --strict, Kubernetes %s)" %
          (len(files), VALIDATE_VERSION, VALIDATE_VERSION))
    # The same check must refuse a misspelt field.
    with open(os.path.join(K8S, "broker.yaml")) as f:
        text = f.read()
    check("replicas: 1" in text, "broker.yaml has no 'replicas: 1' to misspell")
    bad = os.path.join(run.dir, "bad.yaml")
    with open(bad, "w") as f:
        f.write(text.replace("replicas: 1", "replicaz: 1", 1))
    r = subprocess.run([exe, "--strict", "--quiet", bad], capture_output=True, text=True, timeout=120)
    check(r.returncode != 0, "kubernetes-validate accepted a misspelt field:\n%s" % r.stdout)


def containers_of(doc):
    spec = doc["spec"]["template"]["spec"]
    return spec, spec["containers"]


def test_b_arbor_rules(run):
    docs = load_all(MANIFESTS)
    secrets = {d["metadata"]["name"]: set(d["data"]) for _, d in load_all([make_secrets(run)])}
    check(set(secrets) == {"arbor-broker-key", "arbor-supervisor-key", "arbor-operator-key", "arbor-allow"},
          "make-secrets.sh made %s" % sorted(secrets))
    by = {(d["kind"], d["metadata"]["name"]): d for _, d in docs}
    for d in by.values():
        check(d["metadata"].get("namespace", "arbor") == "arbor" or d["kind"] == "Namespace",
              "%s/%s outside namespace arbor" % (d["kind"], d["metadata"]["name"]))

    svc = by.get(("Service", "broker"))
    check(svc and svc["spec"].get("clusterIP") == "None", "Service broker: missing or not headless")
    check([p["port"] for p in svc["spec"]["ports"]] == [5555], "Service broker ports %r" % svc["spec"]["ports"])
    dep = by.get(("Deployment", "broker"))
    check(dep and dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate",
          "Deployment broker: one replica, Recreate")
    check(svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items(),
          "Service broker does not select the broker pods")
    ds = by.get(("DaemonSet", "supervisor"))
    check(ds is not None, "no DaemonSet supervisor")
    env = {e["name"]: e for e in containers_of(ds)[1][0]["env"]}
    check(env.get("ARBOR_SUPERVISOR_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
          == "spec.nodeName", "supervisor name not from spec.nodeName: %r" % env.get("ARBOR_SUPERVISOR_NAME"))
    check(env.get("ARBOR_BROKER", {}).get("value") == "tcp://broker:5555", "supervisor ARBOR_BROKER")

    workloads = [d for d in by.values() if d["kind"] in ("Deployment", "DaemonSet")]
    check(len(workloads) >= 3, "expected broker, supervisor and cli workloads: %r" % list(by))
    for d in workloads:
        what = "%s/%s" % (d["kind"], d["metadata"]["name"])
        pod, ctrs = containers_of(d)
        psc = pod.get("securityContext", {})
        check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 10001,
              "%s: pod not runAsNonRoot as uid 10001" % what)
        check(pod.get("automountServiceAccountToken") is False, "%s mounts a service account token" % what)
        mounted = {}
        for v in pod.get("volumes", []):
            if "secret" in v:
                mounted[v["name"]] = v["secret"]
        for c in ctrs:
            sc = c.get("securityContext", {})
            check(sc.get("allowPrivilegeEscalation") is False and sc.get("runAsNonRoot") is True and
                  sc.get("readOnlyRootFilesystem") is True and sc.get("capabilities", {}).get("drop") == ["ALL"],
                  "%s/%s securityContext %r" % (what, c["name"], sc))
            res = c.get("resources", {})
            check(set(res.get("requests", {})) >= {"cpu", "memory"} and set(res.get("limits", {})) >= {"cpu", "memory"},
                  "%s/%s resources %r" % (what, c["name"], res))
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                if probe in c:
                    cmd = c[probe].get("exec", {}).get("command", [])
                    check(cmd[:1] == ["/arborctl"], "%s/%s %s is not an arborctl exec: %r" % (what, c["name"], probe, cmd))
        for name, sec in mounted.items():
            check(sec["secretName"] in secrets, "%s mounts unknown Secret %s" % (what, sec["secretName"]))
            for item in sec.get("items", []):
                check(item["key"] in secrets[sec["secretName"]], "%s: Secret %s has no key %s" %
                      (what, sec["secretName"], item["key"]))
    sup = containers_of(ds)[1][0]
    check("readinessProbe" in sup and "livenessProbe" not in sup,
          "supervisor: a readiness probe, and no liveness probe through the broker")
    b = containers_of(dep)[1][0]
    check("readinessProbe" in b and "livenessProbe" in b, "broker: readiness and liveness probes")
    print("  %d workloads follow the rules" % len(workloads))


TESTS = [test_a_kubernetes_validate, test_b_arbor_rules]

if __name__ == "__main__":
    try:
        import yaml  # noqa: F401  (python3-yaml)
    except ImportError:
        print("SKIP test_k8s_manifests: python3-yaml is not installed")
        print("0 passed, 0 failed, %d skipped" % len(TESTS))
        sys.exit(0)
    harness.main(TESTS)
