"""/docs: Swagger UI over /openapi.json, its files served from a package, under the CSP."""

from __future__ import annotations

import re


def test_docs_page_loads_its_assets_from_this_origin_only(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    html = page.get_data(as_text=True)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all(not body.strip() for _, body in scripts), "no inline script"
    sources = [re.search(r'src="([^"]+)"', attributes).group(1) for attributes, _ in scripts]
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    assert "/docs/docs.js" in sources
    for url in sources + styles:
        assert url.startswith("/"), f"{url} is not same-origin"
        with client.get(url) as asset:  # a file answer: closed, so no ResourceWarning
            assert asset.status_code == 200, url
            expected = "text/css" if url.endswith(".css") else "text/javascript"
            assert asset.mimetype == expected, url
            assert len(asset.get_data()) > 0


def test_the_initialiser_points_swagger_ui_at_the_spec(client):
    with client.get("/docs/docs.js") as answer:
        script = answer.get_data(as_text=True)
    assert '"/openapi.json"' in script and "SwaggerUIBundle" in script
    assert "https://" not in script and "http://" not in script


def test_unknown_docs_files_are_404(client):
    assert client.get("/docs/index.html").status_code == 404
    assert client.get("/docs/..%2Fopenapi.py").status_code == 404


def test_the_api_root_links_to_docs(client):
    assert client.get("/").get_json()["data"]["docs"] == "/docs"
