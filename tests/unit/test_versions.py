"""One target version per package, in the ordering of the package's own format."""
from __future__ import annotations

from job.versions import scheme, target, target_of


def test_the_target_is_the_highest_fixed_by_version_in_the_package_format():
    assert target("deb", ("3.0.2-0ubuntu1.12", "3.0.2-0ubuntu1.14", "3.0.2-0ubuntu1.9")) == "3.0.2-0ubuntu1.14"
    assert target("deb", ("1.0", "1.0~rc1")) == "1.0"  # a tilde sorts before the release
    assert target("deb", ("1:1.2.11", "1.2.13")) == "1:1.2.11"  # the epoch wins
    assert target("rpm", ("7.61.1-34.el8", "7.61.1-34.el8_10.2")) == "7.61.1-34.el8_10.2"
    assert target("apk", ("1.36.1-r2", "1.36.1-r15")) == "1.36.1-r15"  # not as text: "r2" > "r15"
    assert target("semver", ("2.17.1", "2.17.0", "2.9.0")) == "2.17.1"
    assert target("pypi", ("2.31.0", "2.31.0.post1")) == "2.31.0.post1"


def test_no_target_when_the_format_is_unknown_or_a_version_unreadable():
    assert target("", ("1.2", "1.3")) == ""
    assert target("semver", ("1.2.3", "not a version")) == ""
    assert target("deb", ("1.0", "x" * 1000)) == ""
    assert target("deb", ("1.0", "1.0", " ")) == "1.0"  # one version: itself, whatever the format


def test_the_scheme_comes_from_the_format_else_the_distribution():
    assert scheme("dpkg") == "deb" and scheme("rpm") == "rpm"
    assert scheme("", "ubuntu:22.04") == "deb" and scheme("", "rhel:9") == "rpm" and scheme("", "alpine:3.19") == "apk"
    assert scheme("", "") == "" and scheme("weird", "plan9:1") == ""
    assert target_of(["1.2-r1", "1.2-r10"], version_format="", namespace_name="alpine:3.19") == "1.2-r10"


def test_fixed_by_versions_have_one_order_whatever_order_they_came_in():
    from job.versions import ordered

    for listed in (("3.0.2-0ubuntu1.14", "3.0.2-0ubuntu1.12", "3.0.2-0ubuntu1.9"),
                   ("3.0.2-0ubuntu1.9", "3.0.2-0ubuntu1.12", "3.0.2-0ubuntu1.14", "3.0.2-0ubuntu1.12")):
        assert ordered("deb", listed) == ("3.0.2-0ubuntu1.9", "3.0.2-0ubuntu1.12", "3.0.2-0ubuntu1.14")
        assert ordered("", listed) == ("3.0.2-0ubuntu1.9", "3.0.2-0ubuntu1.12", "3.0.2-0ubuntu1.14")
    assert ordered("apk", ("1.36.1-r15", "1.36.1-r2")) == ("1.36.1-r2", "1.36.1-r15")
    assert ordered("semver", ("not a version", "1.2.3")) == ("1.2.3", "not a version")  # natural order
