"""The registry page of each image: built from the manifest and its backend, http(s) only."""
from __future__ import annotations

from job.model import ImageRef
from job.report.links import registry_page

DIGEST = "sha256:" + "a" * 64


def test_quay_pages_are_deterministic_also_offline():
    ref = ImageRef("quay.example", "shop/web", DIGEST)
    page = f"https://quay.example/repository/shop/web/manifest/{DIGEST}?tab=vulnerabilities"
    assert registry_page(ref, backend="offline") == registry_page(ref, backend="quay") == page
    given = f"http://quay.example:8080/repository/shop/web/manifest/{DIGEST}?tab=vulnerabilities"
    assert registry_page(ref, backend="quay", given=given) == given  # the backend knows its scheme
    assert registry_page(ref, backend="quay", given="javascript:alert(1)") == page


def test_harbor_artifact_page_encodes_nested_repositories_twice():
    ref = ImageRef("harbor.example", "team/tools/cli", DIGEST)
    assert registry_page(ref, backend="harbor") == (
        f"https://harbor.example/harbor/projects/team/repositories/tools%252Fcli/artifacts-tab/artifacts/{DIGEST}")
    assert registry_page(ImageRef("harbor.example", "flat", DIGEST), backend="harbor") == ""


def test_docker_hub_tag_page_from_the_image_as_written():
    ref = ImageRef("docker.io", "library/postgres", DIGEST)
    assert registry_page(ref, backend="", written=["postgres:16.2@" + DIGEST]) == (
        "https://hub.docker.com/layers/library/postgres/16.2/images/sha256-" + "a" * 64)
    assert registry_page(ref, backend="") == "https://hub.docker.com/_/postgres/tags"
    assert registry_page(ImageRef("docker.io", "bitnami/redis", DIGEST), backend="",
                         written=["localhost:5000/x", "bitnami/redis:7"]).endswith("/bitnami/redis/7/images/sha256-" + "a" * 64)


def test_no_page_where_none_is_known_and_never_a_hostile_link():
    assert registry_page(ImageRef("registry.local:5000", "ops/agent", DIGEST), backend="clair") == ""
    hostile = ImageRef("quay.example", 'evil/"><script>', DIGEST)
    assert "<" not in registry_page(hostile, backend="quay") and '"' not in registry_page(hostile, backend="quay")


def test_every_output_links_the_registry_page_where_a_backend_gave_none():
    import dataclasses
    import io

    import openpyxl

    from job.notify.message import build_message
    from job.report import build_context
    from job.report.html import render_html
    from job.report.summary import summary_doc
    from job.report.xlsx import xlsx_bytes
    from tests.factories import make_feature, make_pod, make_result, make_settings, make_snapshot, make_vuln

    quay, harbor = ImageRef("quay.example", "shop/web", DIGEST), ImageRef("harbor.example", "team/api", DIGEST)
    hub = ImageRef("docker.io", "library/postgres", DIGEST)
    feature = make_feature("openssl", "3.0.1", make_vuln("CVE-2024-0727", "Critical", fixed_by="3.0.13"))
    results = {quay: make_result(quay, feature, page_url=""), harbor: make_result(harbor, feature, page_url=""),
               hub: make_result(hub, feature, page_url="")}
    results[harbor] = dataclasses.replace(results[harbor], backend="harbor")
    results[quay] = dataclasses.replace(results[quay], backend="offline")  # saved Quay answers
    pods = [make_pod("shop", "web-1", quay), make_pod("shop", "api-1", harbor), make_pod("db", "pg-0", hub)]
    snap = make_snapshot(pods)
    ctx = build_context(snapshot=snap, results=results, outcome=None, previous=None, settings=make_settings())
    pages = {i["image"]: i["pageUrl"] for i in summary_doc(ctx)["images"]}
    assert pages["quay.example/shop/web"].startswith("https://quay.example/repository/shop/web/manifest/")
    assert pages["harbor.example/team/api"].startswith("https://harbor.example/harbor/projects/team/repositories/")
    assert pages["docker.io/library/postgres"].startswith("https://hub.docker.com/")
    html = render_html(ctx)
    assert all(url.replace("&", "&amp;") in html for url in pages.values())
    wb = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(ctx)))
    links = {c.hyperlink.target for row in wb["Images"].iter_rows() for c in row if c.hyperlink}
    assert set(pages.values()) <= links
    mail = build_message(ctx, sender="imvjob@example.com", recipient="sec@example.com", attachments=[])
    body = mail.get_body(("html",)).get_content()
    assert all(url.replace("&", "&amp;") in body for url in pages.values())
