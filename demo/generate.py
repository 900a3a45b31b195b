"""Synthetic demo data: a pod list as `kubectl get pods -A -o json` prints it, and one Quay security
API response per manifest, as `imvjob run --pods … --secscan-dir …` reads them.

    python demo/generate.py                 # rewrites demo/pods.json and demo/secscan/
    python demo/generate.py --pods 50000 --images 3000 --out /tmp/big   # benchmark size

Deterministic for a given seed. The packages and advisories are real names; the pods, images and
digests are made up.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
from pathlib import Path
from typing import Any

ADVISORIES = [
    # (package, installed, fixed-by, name, severity, cvss, description)
    ("openssl", "3.0.2-0ubuntu1.10", "3.0.2-0ubuntu1.12", "CVE-2023-5678", "Medium", 5.3,
     "Generating excessively long X9.42 DH keys or checking excessively long X9.42 DH keys or parameters "
     "may be very slow."),
    ("openssl", "3.0.2-0ubuntu1.10", "3.0.2-0ubuntu1.14", "CVE-2024-0727", "Low", 5.5,
     "Processing a maliciously formatted PKCS12 file may lead OpenSSL to crash leading to a potential "
     "Denial of Service attack."),
    ("curl", "7.81.0-1ubuntu1.13", "7.81.0-1ubuntu1.14", "CVE-2023-38545", "High", 9.8,
     "This flaw makes curl overflow a heap based buffer in the SOCKS5 proxy handshake."),
    ("curl", "7.81.0-1ubuntu1.13", "", "CVE-2023-38546", "Low", 3.7,
     "This flaw allows an attacker to insert cookies at will into a running program using libcurl, "
     "if the specific series of conditions are met."),
    ("glibc", "2.35-0ubuntu3.3", "2.35-0ubuntu3.4", "CVE-2023-4911", "High", 7.8,
     "A buffer overflow was discovered in the GNU C Library's dynamic loader ld.so while processing the "
     "GLIBC_TUNABLES environment variable (Looney Tunables)."),
    ("zlib", "1:1.2.11.dfsg-2ubuntu9.2", "", "CVE-2023-45853", "Medium", 9.8,
     "MiniZip in zlib through 1.3 has an integer overflow and resultant heap-based buffer overflow in "
     "zipOpenNewFileInZip4_64 via a long filename, comment, or extra field."),
    ("libxml2", "2.9.13+dfsg-1ubuntu0.3", "2.9.13+dfsg-1ubuntu0.4", "CVE-2024-25062", "Medium", 7.5,
     "An issue was discovered in libxml2 before 2.11.7 and 2.12.x before 2.12.5. When using the XML "
     "Reader interface with DTD validation and XInclude expansion enabled, processing crafted XML "
     "documents can lead to an xmlValidatePopElement use-after-free."),
    ("bash", "5.1-6ubuntu1", "", "CVE-2022-3715", "Low", 7.8,
     "A flaw was found in the bash package, where a heap-buffer overflow can occur in valid "
     "parameter_transform."),
    ("log4j-core", "2.14.1", "2.15.0", "CVE-2021-44228", "Critical", 10.0,
     "Apache Log4j2 JNDI features used in configuration, log messages, and parameters do not protect "
     "against attacker controlled LDAP and other JNDI related endpoints (Log4Shell)."),
    ("xz-utils", "5.6.0-0.2", "5.6.1+really5.4.5-1", "CVE-2024-3094", "Critical", 10.0,
     "Malicious code was discovered in the upstream tarballs of xz, starting with version 5.6.0."),
    ("perl", "5.34.0-3ubuntu1.2", "", "CVE-2023-31484", "Negligible", 8.1,
     "CPAN.pm before 2.35 does not verify TLS certificates when downloading distributions over HTTPS."),
    ("ncurses", "6.3-2ubuntu0.1", "6.3-2ubuntu0.2", "CVE-2023-29491", "Unknown", 0.0,
     "ncurses before 6.4 20230408, when used by a setuid application, allows local users to trigger "
     "security-relevant memory corruption via malformed data in a terminfo database file."),
    ("requests", "2.25.1", "2.31.0", "CVE-2023-32681", "Medium", 6.1,
     "Requests leaks Proxy-Authorization headers to destination servers when redirected to an HTTPS "
     "endpoint."),
    ("util-linux", "2.37.2-4ubuntu3", "", "CVE-2024-28085", "Medium", 8.4,
     "wall in util-linux through 2.40 often does not filter escape sequences from command line "
     "arguments."),
]
CLEAN_PACKAGES = [("coreutils", "8.32-4.1ubuntu1"), ("tzdata", "2024a-0ubuntu0.22.04"),
                  ("ca-certificates", "20230311ubuntu0.22.04.1"), ("libc-bin", "2.35-0ubuntu3.3")]
REGISTRIES = ["quay.example.com", "registry.example.com:5000", "docker.io"]
TEAMS = ["payments", "checkout", "search", "identity", "platform", "data", "web", "batch"]
APPS = ["api", "worker", "frontend", "cache", "gateway", "indexer", "scheduler", "exporter", "db", "queue"]


def digest_of(*parts: object) -> str:
    return "sha256:" + hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def quay_response(rng: random.Random, *, vulnerable: int, hostile: bool = False) -> dict[str, Any]:
    chosen = rng.sample(ADVISORIES, k=min(vulnerable, len(ADVISORIES)))
    by_package: dict[tuple[str, str], list[tuple]] = {}
    for adv in chosen:
        by_package.setdefault((adv[0], adv[1]), []).append(adv)
    features = [{"Name": name, "VersionFormat": "dpkg", "NamespaceName": "ubuntu:22.04",
                 "AddedBy": digest_of("layer", name), "Version": version, "BaseScores": [], "CVEIds": [],
                 "Vulnerabilities": []} for name, version in CLEAN_PACKAGES]
    for (name, version), advs in sorted(by_package.items()):
        vulns = []
        for _, _, fixed, cve, severity, score, description in advs:
            if hostile:
                description = "<script>alert('x')</script> " + description
            vulns.append({
                "Severity": severity, "NamespaceName": "ubuntu:22.04",
                "Link": f"https://nvd.nist.gov/vuln/detail/{cve} https://ubuntu.com/security/{cve}",
                "FixedBy": fixed, "Description": description, "Name": cve,
                "Metadata": {"UpdatedBy": "ubuntu/updater/jammy", "RepoName": None, "RepoLink": None,
                             "DistroName": "Ubuntu", "DistroVersion": "22.04",
                             "NVD": {"CVSSv3": {"Vectors": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                                                "Score": score}}},
            })
        features.append({"Name": name, "VersionFormat": "dpkg", "NamespaceName": "ubuntu:22.04",
                         "AddedBy": digest_of("layer", name), "Version": version,
                         "BaseScores": [a[5] for a in advs], "CVEIds": [a[3] for a in advs],
                         "Vulnerabilities": vulns})
    return {"status": "scanned",
            "data": {"Layer": {"Name": digest_of("top", rng.random()), "ParentName": "",
                               "NamespaceName": "ubuntu:22.04", "IndexedByVersion": 4, "Features": features}}}


def generate(*, pods: int, images: int, namespaces: int, seed: int = 7,
             vulns_per_image: int = 6) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(pod list, {file name: Quay response}). A few images are left in every state the job reports."""
    rng = random.Random(seed)
    catalogue = []
    for i in range(images):
        host = REGISTRIES[i % len(REGISTRIES)]
        repo = f"{TEAMS[i % len(TEAMS)]}/{APPS[i % len(APPS)]}" if host != "docker.io" else \
            ["library/nginx", "library/redis", "library/postgres", "bitnami/kafka"][i % 4]
        catalogue.append((host, repo, digest_of("image", seed, i)))
    responses: dict[str, dict[str, Any]] = {}
    for i, (host, repo, digest) in enumerate(catalogue):
        name = digest.replace(":", ".") + ".json"
        if i == 3:
            responses[name] = {"status": "queued", "data": None}
        elif i == 5:
            responses[name] = {"status": "unsupported", "data": None}
        elif i == 7:
            continue  # no report at all for this one
        elif i % 11 == 9:
            responses[name] = quay_response(rng, vulnerable=0)
        else:
            responses[name] = quay_response(rng, vulnerable=max(1, vulns_per_image + rng.randint(-3, 3)),
                                            hostile=(i == 1))
    ns_names = [f"{TEAMS[i % len(TEAMS)]}{'' if i < len(TEAMS) else '-' + str(i // len(TEAMS))}"
                for i in range(namespaces)]
    items: list[dict[str, Any]] = []
    for n, ns in enumerate(ns_names):
        annotations = {"imvjob/notify": f"{ns.split('-')[0]}-team@example.com"} if n % 3 != 2 else {}
        items.append({"apiVersion": "v1", "kind": "Namespace",
                      "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns},
                                   "annotations": annotations}})
    for p in range(pods):
        ns = ns_names[p % len(ns_names)]
        host, repo, digest = catalogue[(p * 7 + p // len(ns_names)) % len(catalogue)]
        app = repo.rsplit("/", 1)[-1]
        kind = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Pod")[p % 5]
        owner_name = f"{app}-{p % 4}"
        template_hash = hashlib.sha1(f"{ns}{owner_name}".encode()).hexdigest()[:9]
        labels = {"app": app}
        owners: list[dict[str, Any]] = []
        if kind == "Deployment":
            labels["pod-template-hash"] = template_hash
            owners = [{"kind": "ReplicaSet", "name": f"{owner_name}-{template_hash}"}]
            pod_name = f"{owner_name}-{template_hash}-{p:05d}"
        elif kind == "CronJob":
            owners = [{"kind": "Job", "name": f"{owner_name}-29021780"}]
            pod_name = f"{owner_name}-29021780-{p:05d}"
        elif kind == "Pod":
            pod_name = f"{app}-debug-{p:05d}"
        else:
            owners = [{"kind": kind, "name": owner_name}]
            pod_name = f"{owner_name}-{p}"
        image = f"{host}/{repo}:1.{p % 5}" if host != "docker.io" else f"{repo.split('/')[-1]}:1.{p % 5}"
        image_id = f"{host}/{repo}@{digest}"
        statuses = [{"name": app, "image": image, "imageID": image_id, "ready": True, "restartCount": 0,
                     "containerID": f"cri-o://{hashlib.sha256(f'{ns}{pod_name}'.encode()).hexdigest()}",
                     "state": {"running": {"startedAt": "2026-11-28T08:00:00Z"}}}]
        containers = [{"name": app, "image": image}]
        init_statuses: list[dict[str, Any]] = []
        if p % 6 == 0:  # an init container that ran an image of its own
            ihost, irepo, idigest = catalogue[(p + 1) % len(catalogue)]
            init_statuses = [{"name": "migrate", "image": f"{ihost}/{irepo}:init", "imageID": f"{ihost}/{irepo}@{idigest}",
                              "ready": True, "restartCount": 0,
                              "containerID": f"cri-o://{hashlib.sha256(f'init{ns}{pod_name}'.encode()).hexdigest()}",
                              "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]
        if p % 17 == 4:  # a runtime that reports only the image ID, for an image not pinned by digest
            statuses[0]["imageID"] = "sha256:" + hashlib.sha256(f"config{p}".encode()).hexdigest()
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name, "namespace": ns, "uid": hashlib.md5(pod_name.encode()).hexdigest(),
                         "labels": labels,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": o["kind"], "name": o["name"],
                                              "uid": hashlib.md5(o["name"].encode()).hexdigest(),
                                              "controller": True, "blockOwnerDeletion": True} for o in owners]},
            "spec": {"containers": containers, "serviceAccountName": "default",
                     "initContainers": [{"name": "migrate", "image": s["image"]} for s in init_statuses]},
            "status": {"phase": "Running", "containerStatuses": statuses,
                       **({"initContainerStatuses": init_statuses} if init_statuses else {})},
        }
        items.append(pod)
    # One pod that is not running and one item a tool mangled: both must be handled, not fatal.
    items.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "build-1", "namespace": ns_names[0]},
                  "spec": {"containers": [{"name": "b", "image": "busybox"}]}, "status": {"phase": "Succeeded"}})
    items.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": ns_names[0]}, "status": {}})
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}, responses


def write(out: Path, pod_list: dict[str, Any], responses: dict[str, dict[str, Any]], *, indent: int | None) -> None:
    secscan = out / "secscan"
    if secscan.exists():
        shutil.rmtree(secscan)
    secscan.mkdir(parents=True)
    (out / "pods.json").write_text(json.dumps(pod_list, indent=indent) + "\n", encoding="utf-8")
    for name, doc in responses.items():
        (secscan / name).write_text(json.dumps(doc, indent=indent) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=60)
    parser.add_argument("--images", type=int, default=18)
    parser.add_argument("--namespaces", type=int, default=8)
    parser.add_argument("--vulns-per-image", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    pod_list, responses = generate(pods=args.pods, images=args.images, namespaces=args.namespaces,
                                   seed=args.seed, vulns_per_image=args.vulns_per_image)
    write(args.out, pod_list, responses, indent=1 if args.pods <= 1000 else None)
    print(f"wrote {args.out}/pods.json ({args.pods} pods) and {len(responses)} responses in {args.out}/secscan/")


if __name__ == "__main__":
    main()
