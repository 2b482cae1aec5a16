"""The web page at `/`, clicked through in a real headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.serve.browser import browser_page


@pytest.fixture(scope="module")
def page(server):
    # everything stays on loopback: any other request is refused before it leaves the browser
    with browser_page(lambda url: url.startswith(server.url)) as (page, _):
        yield page


def test_choose_a_file_and_see_the_text(page, server, captchas):
    image = sorted(captchas.glob("*.png"))[0]
    expected = httpx.post(f"{server.url}/v1/read", files={"file": (image.name, image.read_bytes())}).json()
    page.goto(server.url + "/")
    page.wait_for_selector(f"#model option[value='{server.run.name}']", state="attached")
    assert "1 model loaded" in page.text_content("#health")
    assert "text" in page.text_content("#model-info") and "onnx" in page.text_content("#model-info")

    page.set_input_files("#file-input", str(image))
    page.wait_for_selector(".result")
    (text,) = page.locator(".result .text").all_text_contents()
    assert text == (expected["results"][0]["text"] or "∅")
    confidence = 100 * expected["results"][0]["confidence"]
    assert f"{confidence:.1f}%" in page.text_content(".result .confidence")
    assert image.name in page.text_content(".result .file")
    timing = page.text_content("#timing")
    assert "1 image" in timing and "server" in timing and "ms" in timing
    assert page.locator(".result img").evaluate("img => img.complete && img.naturalWidth > 0")


def test_drop_several_images_then_a_bad_one(page, server, captchas):
    files = sorted(captchas.glob("*.png"))[:3]
    page.goto(server.url + "/")
    page.wait_for_selector(f"#model option[value='{server.run.name}']", state="attached")
    drop = """([items]) => {
        const dt = new DataTransfer();
        for (const [name, b64, type] of items) {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            dt.items.add(new File([bytes], name, {type}));
        }
        document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true,
                                                                             cancelable: true}));
    }"""
    page.evaluate(drop, [[[f.name, base64.b64encode(f.read_bytes()).decode(), "image/png"] for f in files]])
    page.wait_for_function("document.querySelectorAll('.result').length === 3")
    assert [t.strip() for t in page.locator(".result .file").all_text_contents()] == [f.name for f in files]
    assert "3 images" in page.text_content("#timing")

    page.evaluate(drop, [[["notes.png", base64.b64encode(b"not a picture").decode(), "image/png"]]])
    page.wait_for_selector("#error", state="visible")
    assert "not an image" in page.text_content("#error") and "notes.png" in page.text_content("#error")
    assert page.locator(".result").count() == 0
