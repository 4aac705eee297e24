"""Mirror discovery from apt configuration (no podman, no network)."""

import textwrap

import pytest

from yoroi.lab import mirror as m

# Placeholder hosts from the reserved .example / .invalid domains: the project
# never names a real mirror.
DEB822 = textwrap.dedent(
    """\
    Types: deb
    # a comment line
    URIs: http://archive.example/debian
    Suites: bookworm bookworm-updates
    Components: main
    Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

    Types: deb
    URIs: http://security.example/debian-security
    Suites: bookworm-security
    Components: main
    Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
    """
)

THIRD_PARTY = textwrap.dedent(
    """\
    Types: deb
    URIs: https://vendor.example/node_20.x
    Suites: nodistro
    Components: main
    """
)


def test_parse_deb822_stanzas():
    sources = m.parse_deb822(DEB822)
    assert [s.suites for s in sources] == [("bookworm", "bookworm-updates"), ("bookworm-security",)]
    assert sources[0].uris == ("http://archive.example/debian",)
    assert all(s.enabled for s in sources)


def test_pick_main_and_security_ignoring_third_party():
    sources = m.parse_deb822(THIRD_PARTY) + m.parse_deb822(DEB822)
    got = m.pick_mirrors(sources)
    assert got == m.Mirrors("http://archive.example/debian", "http://security.example/debian-security")


def test_disabled_stanza_is_skipped():
    text = "Enabled: no\n" + DEB822.split("\n\n")[0] + "\n\nTypes: deb\nURIs: http://b.example/debian/\nSuites: trixie\nComponents: main contrib\n"
    got = m.pick_mirrors(m.parse_deb822(text))
    assert got.archive == "http://b.example/debian"
    assert got.security is None


def test_one_line_format_with_options_and_comments():
    text = textwrap.dedent(
        """\
        # deb cdrom:[Debian GNU/Linux 12]/ bookworm main
        deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://one.example/debian bookworm main contrib
        deb-src http://one.example/debian bookworm main
        deb http://one.example/debian-security bookworm-security main
        deb https://cloud.example/apt cloud-sdk-bookworm main
        """
    )
    sources = m.parse_one_line(text)
    assert sources[0].uris == ("http://one.example/debian",)
    assert sources[0].components == ("main", "contrib")
    got = m.pick_mirrors(sources)
    assert got.archive == "http://one.example/debian"
    assert got.security == "http://one.example/debian-security"


def test_old_security_suite_style():
    got = m.pick_mirrors(m.parse_one_line(
        "deb http://x.example/debian buster main\ndeb http://x.example/debian-security buster/updates main\n"))
    assert got.security == "http://x.example/debian-security"


def test_no_archive_raises():
    with pytest.raises(m.MirrorNotFound):
        m.pick_mirrors(m.parse_deb822(THIRD_PARTY))


def _fake_root(tmp_path, sources=None, lst=None):
    d = tmp_path / "etc/apt/sources.list.d"
    d.mkdir(parents=True)
    if sources:
        (d / "debian.sources").write_text(sources)
    if lst:
        (tmp_path / "etc/apt/sources.list").write_text(lst)
    (d / "other.list.disabled-by-farm").write_text("deb http://ignored.example/debian bookworm main\n")
    return tmp_path


def test_find_mirrors_reads_files(tmp_path, monkeypatch):
    monkeypatch.delenv(m.ENV_MIRROR, raising=False)
    monkeypatch.delenv(m.ENV_SECURITY_MIRROR, raising=False)
    root = _fake_root(tmp_path, sources=DEB822)
    got = m.find_mirrors(root=root)
    assert got.archive == "http://archive.example/debian"


def test_find_mirrors_sources_list_only(tmp_path, monkeypatch):
    monkeypatch.delenv(m.ENV_MIRROR, raising=False)
    root = _fake_root(tmp_path, lst="deb http://l.example/debian trixie main\n")
    assert m.find_mirrors(root=root).archive == "http://l.example/debian"


def test_overrides(tmp_path, monkeypatch):
    root = _fake_root(tmp_path, sources=DEB822)
    monkeypatch.setenv(m.ENV_MIRROR, "http://env.example/debian/")
    assert m.find_mirrors(root=root).archive == "http://env.example/debian"
    assert m.find_mirrors("http://opt.example/debian", root=root).archive == "http://opt.example/debian"
    # the option works even when the machine has no apt configuration at all
    empty = tmp_path / "empty"
    (empty / "etc/apt").mkdir(parents=True)
    assert m.find_mirrors("http://opt.example/debian", root=empty).security is None


def test_render_sources_list():
    text = m.render_sources_list(m.Mirrors("http://a.example/debian", "http://s.example/ds"), "trixie")
    lines = [l for l in text.splitlines() if not l.startswith("#")]
    assert lines == [
        "deb http://a.example/debian trixie main",
        "deb http://a.example/debian trixie-updates main",
        "deb http://s.example/ds trixie-security main",
    ]
    assert "security" not in m.render_sources_list(m.Mirrors("http://a.example/debian"), "bookworm")
