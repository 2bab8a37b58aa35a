"""How settings become OpenSearch connection options: credentials, TLS trust, and the mistakes
that must stop a process at start-up rather than at its first query."""

from __future__ import annotations

import ssl

import pytest

from ssg.platform.opensearch import opensearch_options
from ssg.platform.settings import ConfigError, PlatformSettings, load_settings


def settings(**values: str) -> PlatformSettings:
    return load_settings(PlatformSettings, service="t", **values)


def test_a_plain_url_has_no_auth_and_no_tls():
    options = opensearch_options(settings(opensearch_url="http://127.0.0.1:9200"))
    assert options == {"hosts": ["http://127.0.0.1:9200"]}


def test_https_verifies_the_certificate_and_the_host_name(tmp_path):
    from ssg.testing.tls_proxy import certificate_authority

    ca = certificate_authority(tmp_path)
    options = opensearch_options(
        settings(
            opensearch_url="https://opensearch:9200",
            opensearch_username="search",
            opensearch_password="s3cret",
            opensearch_ca_file=str(ca.cert_file),
        )
    )
    assert options["http_auth"] == ("search", "s3cret")
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    # Only the configured CA is trusted, not the system's public CAs as well.
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "ssg-test-ca"),),)]


def test_the_password_is_not_in_the_settings_repr():
    assert "s3cret" not in repr(settings(opensearch_password="s3cret", opensearch_username="u"))


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({}, "SSG_OPENSEARCH_URL"),
        ({"opensearch_url": "http://o:9200", "opensearch_password": "p"}, "USERNAME"),
        ({"opensearch_url": "http://o:9200", "opensearch_ca_file": "/ca.pem"}, "https://"),
        ({"opensearch_url": "https://o:9200", "opensearch_ca_file": "/nope/ca.pem"}, "/nope"),
    ],
)
def test_a_bad_configuration_fails_fast_naming_the_variable(values, named):
    with pytest.raises(ConfigError, match=named):
        opensearch_options(settings(**values))
