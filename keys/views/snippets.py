"""Ready-to-paste code for a key that was just created, with the key filled in.

Built only for the one response that shows the plaintext; nothing here is stored.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from keys.forms import model_choices
from keys.models import APIKey

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_CLAUDE = "claude-sonnet-4-5"


@dataclass(frozen=True)
class Snippet:
    slug: str
    title: str | Promise
    language: str
    code: str


def _concrete(patterns: list[str], wanted: str = "") -> str | None:
    """A model name the key may call: an exact pattern, else a known model matching a glob."""
    for pattern in patterns:
        if "*" not in pattern and pattern.startswith(wanted):
            return pattern
    for name in model_choices():
        if "*" not in name and name.startswith(wanted) and any(fnmatch.fnmatchcase(name, p) for p in patterns):
            return name
    return None


def _model_snippets(base: str, raw: str, key: APIKey) -> list[Snippet]:
    model = _concrete(key.model_patterns) or DEFAULT_MODEL
    claude = _concrete(key.model_patterns, "claude") or DEFAULT_CLAUDE
    return [
        Snippet(
            "curl",
            "curl",
            "shell",
            f"curl {base}/v1/chat/completions \\\n"
            f'  -H "Authorization: Bearer {raw}" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            f'  -d \'{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello"}}]}}\'',
        ),
        Snippet(
            "python-openai",
            "Python (openai)",
            "python",
            "from openai import OpenAI\n\n"
            f'client = OpenAI(base_url="{base}/v1", api_key="{raw}")\n'
            "response = client.chat.completions.create(\n"
            f'    model="{model}",\n'
            '    messages=[{"role": "user", "content": "Hello"}],\n'
            ")\n"
            "print(response.choices[0].message.content)",
        ),
        Snippet(
            "python-anthropic",
            "Python (anthropic)",
            "python",
            "from anthropic import Anthropic\n\n"
            f'client = Anthropic(base_url="{base}", api_key="{raw}")\n'
            "message = client.messages.create(\n"
            f'    model="{claude}",\n'
            "    max_tokens=1024,\n"
            '    messages=[{"role": "user", "content": "Hello"}],\n'
            ")\n"
            "print(message.content[0].text)",
        ),
        Snippet(
            "node",
            "Node.js (openai)",
            "javascript",
            'import OpenAI from "openai";\n\n'
            f'const client = new OpenAI({{ baseURL: "{base}/v1", apiKey: "{raw}" }});\n'
            "const response = await client.chat.completions.create({\n"
            f'  model: "{model}",\n'
            '  messages: [{ role: "user", content: "Hello" }],\n'
            "});\n"
            "console.log(response.choices[0].message.content);",
        ),
        Snippet(
            "langchain",
            "LangChain",
            "python",
            "from langchain_openai import ChatOpenAI\n\n"
            f'llm = ChatOpenAI(model="{model}", base_url="{base}/v1", api_key="{raw}")\n'
            'print(llm.invoke("Hello").content)',
        ),
        Snippet(
            "env",
            _(".env"),
            "shell",
            f"OPENAI_BASE_URL={base}/v1\nOPENAI_API_KEY={raw}\nANTHROPIC_BASE_URL={base}\nANTHROPIC_API_KEY={raw}",
        ),
    ]


def _management_snippets(base: str, raw: str) -> list[Snippet]:
    return [
        Snippet(
            "curl",
            "curl",
            "shell",
            f'curl {base}/api/v1/keys/ \\\n  -H "Authorization: Bearer {raw}"',
        ),
        Snippet(
            "python-httpx",
            "Python (httpx)",
            "python",
            "import httpx\n\n"
            f'api = httpx.Client(base_url="{base}/api/v1", headers={{"Authorization": "Bearer {raw}"}})\n'
            'print(api.get("/keys/").json())',
        ),
        Snippet("env", _(".env"), "shell", f"KEYGATE_URL={base}\nKEYGATE_MANAGEMENT_KEY={raw}"),
    ]


def snippets_for(key: APIKey, raw: str, base: str) -> list[Snippet]:
    """Snippets for ``key`` at the server ``base`` (``https://host``, no trailing slash)."""
    if key.is_management:
        return _management_snippets(base, raw)
    return _model_snippets(base, raw, key)
