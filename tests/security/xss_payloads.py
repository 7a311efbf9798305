"""Corpus of hostile model outputs used to check that rendered responses can neither run code nor fetch URLs.

Payloads that try to run code set ``window.__xss`` or call ``alert(1)`` (``MsgBox`` for vbscript), so a
browser test can watch for either. Payloads that try to make the browser fetch something point at
``INJECTED_URL_PREFIX + "xss-<n>"`` with a number unique to that payload, so a request seen by a listener on
that address names the payload that leaked it. Port 9 (discard) keeps accidental requests harmless.
Control and bidi characters are written as escapes so this file itself displays honestly.
"""

from __future__ import annotations

INJECTED_URL_PREFIX = "http://127.0.0.1:9/"

XSS_PAYLOADS: list[str] = [
    # Script tags: plain, uppercase, remote, nested, broken-up, typed.
    "<script>window.__xss=1</script>",
    "<SCRIPT>alert(1)</SCRIPT>",
    '<script src="http://127.0.0.1:9/xss-1"></script>',
    "<scr<script>ipt>window.__xss=1</scr</script>ipt>",
    "<script><script>alert(1)</script></script>",
    '<script type="module">window.__xss=1</script>',
    "<div>\n<script>window.__xss=1</script>\n</div>",
    "<xss onafterscriptexecute=alert(1)><script>1</script>",
    # Event handlers.
    "<img src=x onerror=window.__xss=1>",
    '<img src="http://127.0.0.1:9/xss-2" onerror="alert(1)">',
    "<IMG SRC=x OnErRoR=alert(1)>",
    "<svg onload=window.__xss=1>",
    "<body onload=window.__xss=1>",
    "<details open ontoggle=window.__xss=1>",
    "<input autofocus onfocus=window.__xss=1>",
    "<marquee onstart=alert(1)>x</marquee>",
    '<a href="#" onclick="window.__xss=1">click me</a>',
    "<video><source onerror=alert(1)></video>",
    "<audio src=x onerror=window.__xss=1>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    # Frames.
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    '<iframe src="http://127.0.0.1:9/xss-3"></iframe>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe src="data:text/html,<script>parent.__xss=1</script>"></iframe>',
    # Dangerous schemes in Markdown links, with encoding, whitespace and case tricks.
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](jav&#x09;ascript:alert(1))",
    "[click](&#106;avascript:window.__xss=1)",
    "[click](&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1))",
    "[click](<javascript:alert(1)>)",
    "[click](javascript%3Aalert(1))",
    "[click](\x01javascript:alert(1))",
    "[click](java\\script:alert(1))",
    "[run window.__xss=1](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==)",
    "[click](data:text/html,<script>alert(1)</script>)",
    "[click](vbscript:MsgBox(1))",
    "[click](VBScript:MsgBox(1))",
    "[protocol-relative](//127.0.0.1:9/xss-4)",
    # Reference-style links and autolinks.
    "[click][evil]\n\n[evil]: javascript:alert(1)",
    '[click][t]\n\n[t]: http://127.0.0.1:9/xss-5 "x\\" onmouseover=\\"alert(1)"',
    "<javascript:alert(1)>",
    "<JAVASCRIPT:window.__xss=1>",
    "<vbscript:MsgBox(1)>",
    "<data:text/html,alert(1)>",
    "<http://127.0.0.1:9/xss-6>",
    '[a](https://example.com"onmouseover="alert(1))',
    "[a](http://example.com 'x\" onmouseover=\"alert(1)')",
    # Markdown images: none may be fetched.
    "![x](javascript:alert(1))",
    "![alert(1)](data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIG9ubG9hZD0iYWxlcnQoMSkiLz4=)",
    "![x](http://127.0.0.1:9/xss-7)",
    '![tracking pixel](http://127.0.0.1:9/xss-8 "title")',
    "![img][pic]\n\n[pic]: http://127.0.0.1:9/xss-9",
    "[![x](http://127.0.0.1:9/xss-10)](javascript:alert(1))",
    "![x](http://127.0.0.1:9/xss-11?q=secret){onerror=alert(1)}",
    # SVG and MathML, including mutation-XSS shapes.
    "<svg><script>window.__xss=1</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">click</text></a></svg>',
    '<svg><image href="http://127.0.0.1:9/xss-12"/></svg>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<math href="javascript:alert(1)">click</math>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<template><script>alert(1)</script></template>",
    # CSS.
    "<style>body{background:url(http://127.0.0.1:9/xss-13)}</style>",
    "<style>@import 'http://127.0.0.1:9/xss-14';</style>",
    '<div style="background:url(http://127.0.0.1:9/xss-15)">x</div>',
    '<div style="width: expression(alert(1))">x</div>',
    '<table background="http://127.0.0.1:9/xss-16"><tr><td>x</td></tr></table>',
    # Document-level elements: refresh, base, forms, plugins, stylesheets.
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<meta http-equiv="refresh" content="0;url=http://127.0.0.1:9/xss-17">',
    '<base href="http://127.0.0.1:9/xss-18/">',
    '<form action="http://127.0.0.1:9/xss-19"><button>go</button></form>',
    '<button formaction="javascript:alert(1)">x</button>',
    "<isindex action=javascript:alert(1) type=image>",
    '<object data="http://127.0.0.1:9/xss-20"></object>',
    '<object data="data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==">alert(1)</object>',
    '<embed src="http://127.0.0.1:9/xss-21">',
    '<link rel="stylesheet" href="http://127.0.0.1:9/xss-22">',
    '<img srcset="http://127.0.0.1:9/xss-23 1x">',
    '<a href="http://127.0.0.1:9/xss-24" ping="http://127.0.0.1:9/xss-24">x</a>',
    # Attributes that front-end libraries treat as code or requests.
    '<div x-data x-init="window.__xss=1">x</div>',
    '<div hx-get="http://127.0.0.1:9/xss-25" hx-trigger="load">x</div>',
    '<span class="highlight md k" id="main" data-x="alert(1)">class smuggling</span>',
    # Entity and Unicode tricks.
    "&lt;script&gt;window.__xss=1&lt;/script&gt;",
    "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;",
    "＜script＞window.__xss=1＜/script＞",
    "<scr\x00ipt>window.__xss=1</scr\x00ipt>",
    "[click](java\x00script:alert(1))",
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "[safe](http://127.0.0.1:9/xss-26)\u202egnp.exe\u202c alert(1)",
    "\u2066\u202ewindow.__xss=1\u2069 <img src=x onerror=alert(1)>",
    "\\<script\\>alert(1)\\</script\\>",
    # Attribute breakouts.
    '"><script>window.__xss=1</script>',
    "'><img src=x onerror=alert(1)>",
    '" onmouseover="alert(1)" x="',
    '`"><img src=x onerror=alert(1)>`',
    # Template injection: must stay literal text, not be evaluated server- or client-side.
    "{{7*7}} ${7*7} <%= 7*7 %> #{7*7}",
    "{{constructor.constructor('window.__xss=1')()}}",
    "{% raw %}{{ alert(1) }}{% endraw %}",
    # Unclosed tags.
    "<img src=x onerror=alert(1)",
    '<a href="javascript:alert(1)">unclosed',
    "<script>window.__xss=1",
    # HTML comments.
    "<!--<img src=x onerror=window.__xss=1>-->",
    "<!--><script>alert(1)</script>-->",
    "<!-- --!><img src=x onerror=alert(1)> -->",
    # Code fences: script must show as code text.
    "```html\n<script>window.__xss=1</script>\n```",
    "```\n<img src=http://127.0.0.1:9/xss-27 onerror=alert(1)>\n```",
    '```python" onmouseover="window.__xss=1\nprint(1)\n```',
    "    <script>alert(1)</script>\n",
    "`<script>alert(1)</script>`",
    # Tables and nesting that carry HTML.
    "| a | b |\n|---|---|\n| <script>alert(1)</script> | <img src=http://127.0.0.1:9/xss-28> |",
    "> <iframe src=javascript:alert(1)>\n> - [x](javascript:alert(1))",
]
