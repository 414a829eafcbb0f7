#!/usr/bin/env python3
"""Invariants of the rendered Kubernetes base (deploy/kubernetes) that a schema cannot see.

    deploy_invariants.py RENDERED.yaml SECRET.yaml [--self-test]

RENDERED is `kubectl kustomize deploy/kubernetes`, SECRET what make-secret.sh printed. Exits 1
naming each broken invariant. --self-test breaks a copy of the objects in each way the checks
guard against and fails unless every break is caught (so a check that cannot fail is found).
"""
import base64
import copy
import re
import sys

import yaml


def duration(text):
    """Seconds of 30s, 2m, 1h30m."""
    total, matched = 0.0, ""
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)([smh])", text):
        total += float(number) * {"s": 1, "m": 60, "h": 3600}[unit]
        matched += number + unit
    if matched != text:
        raise ValueError(f"not a duration: {text!r}")
    return total


def flag(args, name):
    """The value of --name=V or --name V in a container's args (None when absent)."""
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a[len(name) + 1:]
    return None


def check(objects, secret):
    problems = []

    def need(condition, what):
        if not condition:
            problems.append(what)
        return condition

    by_kind = {}
    for o in objects:
        by_kind.setdefault(o["kind"], []).append(o)
    secret_keys = set((secret.get("data") or {}).keys())
    cluster = yaml.safe_load(base64.b64decode(secret["data"]["cluster.yaml"])) if "cluster.yaml" in secret_keys else {}
    coordinator_spec = cluster.get("coordinator", {})
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}

    # Every object in one namespace (the Secret's), every pod spec non-root and unprivileged.
    for o in objects:
        if o["kind"] != "Namespace":
            need(o["metadata"].get("namespace") == secret["metadata"].get("namespace"),
                 f"{o['kind']}/{o['metadata']['name']} is not in the Secret's namespace")
    workloads = by_kind.get("StatefulSet", []) + by_kind.get("DaemonSet", []) + by_kind.get("Deployment", [])
    for w in workloads:
        name = f"{w['kind']}/{w['metadata']['name']}"
        pod = w["spec"]["template"]["spec"]
        for c in pod["containers"]:
            sc = c.get("securityContext", {})
            need(not sc.get("privileged"), f"{name}: container {c['name']} is privileged")
            need(sc.get("allowPrivilegeEscalation") is False, f"{name}: container {c['name']} may escalate privileges")
            if c["image"].startswith("agentflow"):
                non_root = sc.get("runAsNonRoot", pod.get("securityContext", {}).get("runAsNonRoot"))
                need(non_root is True, f"{name}: container {c['name']} may run as root")
                # Keys come from Secrets, never inline.
                for text in c.get("args", []) + [e.get("value", "") for e in c.get("env", [])]:
                    need("secret:" not in text and not re.search(r"serverKey|BEGIN .*PRIVATE", text), f"{name}: key material inline: {text[:40]}")
        # Every Secret a pod mounts exists with the keys it names.
        for v in pod.get("volumes", []):
            if "secret" in v:
                need(v["secret"]["secretName"] == secret["metadata"]["name"], f"{name}: mounts an unknown Secret {v['secret']['secretName']}")
                for item in v["secret"].get("items", []):
                    need(item["key"] in secret_keys, f"{name}: Secret key {item['key']} is not made by make-secret.sh")

    # The coordinator: one replica of a StatefulSet whose volume holds the cluster's database.
    coordinators = [s for s in by_kind.get("StatefulSet", []) if s["metadata"]["name"] == "agentflow-coordinator"]
    if need(len(coordinators) == 1, "no StatefulSet agentflow-coordinator"):
        sts = coordinators[0]
        need(sts["spec"].get("replicas") == 1, "the coordinator must have one replica (one coordinator per SQLite file)")
        claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
        container = sts["spec"]["template"]["spec"]["containers"][0]
        database = coordinator_spec.get("database", "")
        mounted = [m for m in container.get("volumeMounts", []) if m["name"] in claims and database.startswith(m["mountPath"].rstrip("/") + "/")]
        need(mounted, f"the coordinator's database {database!r} is not on a volume of its claim templates {sorted(claims)}")
        cluster_file = flag(container.get("args", []), "--cluster")
        need(cluster_file and any(cluster_file.startswith(m["mountPath"]) for m in container.get("volumeMounts", [])),
             f"the coordinator's --cluster {cluster_file} is not mounted")
        ports = {p["containerPort"] for p in container.get("ports", [])}
        for key in ("workers", "clients"):
            endpoint = coordinator_spec.get(key, "")
            m = re.match(r"tcp://([^:]+):(\d+)$", endpoint)
            if need(m, f"coordinator.{key} {endpoint!r} is not tcp://HOST:PORT"):
                host, port = m.group(1), int(m.group(2))
                need(port in ports, f"coordinator.{key} port {port} is not a port of the coordinator container")
                svc = services.get(host)
                need(svc and any(p["port"] == port for p in svc["spec"]["ports"]), f"coordinator.{key}: no Service {host} with port {port}")
        http = coordinator_spec.get("http", "")
        need(http.endswith(":8080") and 8080 in ports, f"coordinator.http {http!r} does not match the container's port 8080")
        need(coordinator_spec.get("httpTokens") and coordinator_spec.get("curve"), "a coordinator bound beyond loopback needs httpTokens and CURVE")

    # Node pools: GPUs asked for match --gpus, names from the pod name, drain within the grace.
    nodes = [d for d in by_kind.get("DaemonSet", []) if d["metadata"]["labels"].get("app.kubernetes.io/name") == "agentflow-node"]
    need(nodes, "no node DaemonSet")
    for d in nodes:
        name = f"DaemonSet/{d['metadata']['name']}"
        pod = d["spec"]["template"]["spec"]
        node = next((c for c in pod["containers"] if c.get("args", [None])[0] == "node"), None)
        if not need(node, f"{name}: no container runs `agentflow node`"):
            continue
        args = node["args"]
        gpus = flag(args, "--gpus") or ""
        limit = sum(int(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0)) for c in pod["containers"])
        if gpus != "all":
            need(len([g for g in gpus.split(",") if g]) == limit, f"{name}: --gpus {gpus} but the pod asks for {limit} nvidia.com/gpu")
        else:
            need(int(node.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0)) == limit > 0,
                 f"{name}: --gpus all needs the GPUs on the node container itself")
        for c in pod["containers"]:
            if "GPUS" in {e["name"] for e in c.get("env", [])}:
                need(next(e["value"] for e in c["env"] if e["name"] == "GPUS") == gpus, f"{name}: {c['name']} serves GPUs other than --gpus {gpus}")
        need(flag(args, "--name-prefix") == "$(POD_NAME)", f"{name}: worker names must come from the pod name (--name-prefix=$(POD_NAME))")
        need(any(e["name"] == "POD_NAME" and e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name" for e in node.get("env", [])),
             f"{name}: POD_NAME does not come from the downward API")
        grace = duration(flag(args, "--drain-grace") or "30s")
        need(pod.get("terminationGracePeriodSeconds", 30) >= grace, f"{name}: terminationGracePeriodSeconds below the drain grace {grace:g}s")
        for c in pod["containers"]:
            if c is node:
                continue
            stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            need(len(stop) == 2 and stop[0] == "sleep" and float(stop[1]) >= grace and float(stop[1]) < pod.get("terminationGracePeriodSeconds", 30),
                 f"{name}: {c['name']} must keep serving through the drain (preStop sleep ≥ {grace:g}s, within the grace period)")
        coordinator = flag(args, "--coordinator") or ""
        m = re.match(r"tcp://([^:]+):(\d+)$", coordinator)
        if need(m, f"{name}: --coordinator {coordinator!r}"):
            svc = services.get(m.group(1))
            need(svc and any(p["port"] == int(m.group(2)) and p["name"] == "workers" for p in svc["spec"]["ports"]),
                 f"{name}: --coordinator {coordinator} is not the workers port of a Service")
        prefix = next(iter(coordinator_spec.get("curve", {}).get("workerKeys", {})), "")
        need(prefix.endswith("*") and d["metadata"]["name"].startswith(prefix[:-1]) or not prefix,
             f"{name}: its pods' worker names do not match the key binding {prefix!r}")

    # Services select pods that exist; the ServiceMonitor scrapes a port that exists, with a token the Secret has.
    pod_labels = [w["spec"]["template"]["metadata"]["labels"] for w in workloads]
    for s in services.values():
        sel = s["spec"].get("selector", {})
        need(any(all(l.get(k) == v for k, v in sel.items()) for l in pod_labels), f"Service/{s['metadata']['name']} selects no pod")
    for sm in by_kind.get("ServiceMonitor", []):
        sel = sm["spec"]["selector"]["matchLabels"]
        chosen = [s for s in services.values() if all(s["metadata"].get("labels", {}).get(k) == v for k, v in sel.items())]
        need(len(chosen) == 1, f"ServiceMonitor selects {len(chosen)} Services, not one")
        for e in sm["spec"]["endpoints"]:
            need(chosen and any(p["name"] == e["port"] for p in chosen[0]["spec"]["ports"]), f"ServiceMonitor port {e['port']} is not on the Service")
            need(e.get("path") == "/metrics", "ServiceMonitor path is not /metrics")
            cred = e.get("authorization", {}).get("credentials", {})
            need(cred.get("name") == secret["metadata"]["name"] and cred.get("key") in secret_keys, "ServiceMonitor's token is not in the Secret")
    if "metrics-token" in secret_keys and "http-tokens" in secret_keys:
        token = base64.b64decode(secret["data"]["metrics-token"]).decode()
        tokens = base64.b64decode(secret["data"]["http-tokens"]).decode().split()
        need(token in tokens, "the metrics token is not one of the HTTP tokens")
    return problems


def mutations(objects, secret):
    """Ways to break the base, each with what it breaks."""
    def find(objs, kind, name=None):
        return next(o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name))

    def node_pod(objs):
        return find(objs, "DaemonSet")["spec"]["template"]["spec"]

    def set_flag(args, name, value):
        for i, a in enumerate(args):
            if a.startswith(name + "="):
                args[i] = f"{name}={value}"

    yield "GPU limit differs from --gpus", lambda o, s: node_pod(o)["containers"][1]["resources"]["limits"].__setitem__("nvidia.com/gpu", 3)
    yield "grace below the drain", lambda o, s: node_pod(o).__setitem__("terminationGracePeriodSeconds", 60)
    yield "fixed worker names", lambda o, s: set_flag(node_pod(o)["containers"][0]["args"], "--name-prefix", "gpu-host")
    yield "model server stops at once", lambda o, s: node_pod(o)["containers"][1].pop("lifecycle")
    yield "two coordinators", lambda o, s: find(o, "StatefulSet")["spec"].__setitem__("replicas", 2)
    yield "database off the volume", lambda o, s: find(o, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"].pop(0)
    yield "root", lambda o, s: find(o, "StatefulSet")["spec"]["template"]["spec"]["securityContext"].__setitem__("runAsNonRoot", False)
    yield "node to a port that is no Service", lambda o, s: set_flag(node_pod(o)["containers"][0]["args"], "--coordinator", "tcp://agentflow-coordinator:5556")
    yield "a Secret key nobody makes", lambda o, s: s["data"].pop("node.key")
    yield "scraping a port that is not there", lambda o, s: find(o, "ServiceMonitor")["spec"]["endpoints"][0].__setitem__("port", "metrics")
    yield "privilege escalation", lambda o, s: node_pod(o)["containers"][0]["securityContext"].__setitem__("allowPrivilegeEscalation", True)


def main():
    objects = [o for o in yaml.safe_load_all(open(sys.argv[1])) if o]
    secret = yaml.safe_load(open(sys.argv[2]))
    problems = check(objects, secret)
    for p in problems:
        print("FAIL", p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"deploy invariants: {len(objects)} objects, all invariants hold", file=sys.stderr)
    if "--self-test" in sys.argv:
        missed = []
        for what, breaks in mutations(objects, secret):
            o, s = copy.deepcopy(objects), copy.deepcopy(secret)
            breaks(o, s)
            if not check(o, s):
                missed.append(what)
        for m in missed:
            print("FAIL self-test: not caught:", m, file=sys.stderr)
        if missed:
            sys.exit(1)
        print("deploy invariants: every deliberate break is caught", file=sys.stderr)


if __name__ == "__main__":
    main()
