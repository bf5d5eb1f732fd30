"""The cluster's certificates, made with openssl once and kept in the state dir: a CA for the cluster
and one for the front proxy (the aggregation layer metrics-server is reached through), a serving or
client certificate per component as kubeadm names them, and the service-account signing key. Keys
are ECDSA P-256: every component accepts them and they are made in milliseconds."""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster import daemons
from tests.cluster.layout import API_SERVICE_IP, CLUSTER_DOMAIN, NODE_IP, NODE_NAME, Layout

DAYS = 3650


@dataclass(frozen=True)
class Cert:
    name: str                 # files NAME.crt and NAME.key
    cn: str
    orgs: tuple[str, ...] = ()
    sans: tuple[str, ...] = ()  # "IP:..." or "DNS:..."
    server: bool = False
    client: bool = False
    ca: str = "ca"


API_SANS = ("IP:" + NODE_IP, "IP:127.0.0.1", "IP:" + API_SERVICE_IP, "DNS:localhost", "DNS:kubernetes",
            "DNS:kubernetes.default", "DNS:kubernetes.default.svc", f"DNS:kubernetes.default.svc.{CLUSTER_DOMAIN}")
CERTS = (
    Cert("apiserver", "kube-apiserver", sans=API_SANS, server=True),
    # system:masters may do anything on the kubelet: exec, logs, port-forward through the apiserver.
    Cert("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",), client=True),
    Cert("admin", "kubernetes-admin", ("system:masters",), client=True),
    Cert("controller-manager", "system:kube-controller-manager", client=True),
    Cert("scheduler", "system:kube-scheduler", client=True),
    Cert("kube-proxy", "system:kube-proxy", client=True),
    Cert("kubelet", f"system:node:{NODE_NAME}", ("system:nodes",), client=True),
    Cert("kubelet-serving", NODE_NAME, sans=("IP:" + NODE_IP, "DNS:" + NODE_NAME), server=True),
    Cert("prometheus", "prometheus", client=True),  # RBAC in addons.py lets it read nodes and metrics
    Cert("front-proxy-client", "front-proxy-client", client=True, ca="front-proxy-ca"),
)
KUBECONFIG_USERS = ("admin", "controller-manager", "scheduler", "kube-proxy", "kubelet")


def openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {done.stderr.strip()}")


def _key(path: Path) -> None:
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    path.chmod(0o600)


def extensions(cert: Cert) -> str:
    """The openssl extension section of a leaf certificate."""
    usages = [u for u, on in (("serverAuth", cert.server), ("clientAuth", cert.client)) if on]
    lines = ["basicConstraints = critical, CA:FALSE", "keyUsage = critical, digitalSignature, keyEncipherment",
             f"extendedKeyUsage = {', '.join(usages)}"]
    if cert.sans:
        lines.append(f"subjectAltName = {', '.join(cert.sans)}")
    return "\n".join(lines) + "\n"


def subject(cn: str, orgs: tuple[str, ...] = ()) -> str:
    return "".join(f"/O={o}" for o in orgs) + f"/CN={cn}"


def make_ca(pki: Path, name: str, cn: str) -> None:
    if (pki / f"{name}.crt").exists():
        return
    _key(pki / f"{name}.key")
    openssl("req", "-x509", "-new", "-key", str(pki / f"{name}.key"), "-subj", subject(cn), "-days", str(DAYS),
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-out", str(pki / f"{name}.crt.tmp"))
    (pki / f"{name}.crt.tmp").rename(pki / f"{name}.crt")


def make_cert(pki: Path, cert: Cert) -> None:
    """Signed by its CA; the certificate file is renamed into place last, so a made one is whole."""
    crt = pki / f"{cert.name}.crt"
    if crt.exists():
        return
    key, csr, ext = (pki / f"{cert.name}{suffix}" for suffix in (".key", ".csr", ".ext"))
    _key(key)
    openssl("req", "-new", "-key", str(key), "-subj", subject(cert.cn, cert.orgs), "-out", str(csr))
    ext.write_text(extensions(cert))
    openssl("x509", "-req", "-in", str(csr), "-CA", str(pki / f"{cert.ca}.crt"), "-CAkey", str(pki / f"{cert.ca}.key"),
            "-CAcreateserial", "-days", str(DAYS), "-extfile", str(ext), "-out", f"{crt}.tmp")
    Path(f"{crt}.tmp").rename(crt)
    csr.unlink()
    ext.unlink()


def kubeconfig(server: str, ca: Path, cert: Path, key: Path, user: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Config", "current-context": "pycrid",
            "clusters": [{"name": "pycrid", "cluster": {"server": server, "certificate-authority": str(ca)}}],
            "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
            "contexts": [{"name": "pycrid", "context": {"cluster": "pycrid", "user": user}}]}


def ensure(layout: Layout) -> None:
    """Every certificate, key and kubeconfig the cluster uses; those already there are kept."""
    pki = layout.pki
    pki.mkdir(parents=True, exist_ok=True)
    make_ca(pki, "ca", "pycrid-cluster-ca")
    make_ca(pki, "front-proxy-ca", "pycrid-front-proxy-ca")
    for cert in CERTS:
        make_cert(pki, cert)
    if not (pki / "sa.pub").exists():
        _key(pki / "sa.key")
        openssl("pkey", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))
    for user in KUBECONFIG_USERS:
        path = layout.kubeconfig(user)
        path.parent.mkdir(parents=True, exist_ok=True)
        config = kubeconfig(layout.api_server, pki / "ca.crt", pki / f"{user}.crt", pki / f"{user}.key", user)
        daemons.write_config(path, json.dumps(config, indent=2))
