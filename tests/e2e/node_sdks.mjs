// The official Node SDKs (openai, @anthropic-ai/sdk) against a live Keygate: every scenario once,
// each result (or the error's class and status) printed as one JSON object for tests/e2e/test_node_sdks.py.
// Input: KEYGATE_NODE_TEST = {"url", "keys": {"all", "gpt-only", "unknown"}}.
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";

const { url, keys } = JSON.parse(process.env.KEYGATE_NODE_TEST);
const openai = (key = keys.all) => new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, timeout: 20000 });
const anthropic = (key = keys.all) => new Anthropic({ baseURL: url, apiKey: key, maxRetries: 0, timeout: 20000 });

const HELLO = [{ role: "user", content: "Hello from node" }];
const ASK = [{ role: "user", content: "What is the weather in Paris?" }];
const CITY = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
const CHAT_TOOLS = [{ type: "function", function: { name: "get_weather", description: "Weather", parameters: CITY } }];
const MESSAGES_TOOLS = [{ name: "get_weather", description: "Weather", input_schema: CITY }];

async function chatPlain(model) {
  const completion = await openai().chat.completions.create({ model, messages: HELLO });
  return { text: completion.choices[0].message.content, model: completion.model, usage: completion.usage };
}

async function chatStream(model, tools) {
  const stream = await openai().chat.completions.create({
    model,
    messages: tools ? ASK : HELLO,
    tools,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let pieces = 0;
  let finish = null;
  let usage = null;
  const calls = {};
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.delta.content) {
        text += choice.delta.content;
        pieces += 1;
      }
      for (const call of choice.delta.tool_calls ?? []) {
        calls[call.index] ??= { id: call.id, name: call.function?.name, arguments: "" };
        calls[call.index].arguments += call.function?.arguments ?? "";
      }
      finish = choice.finish_reason ?? finish;
    }
  }
  return { text, pieces, finish, usage, calls: Object.values(calls) };
}

async function chatTools(model) {
  const completion = await openai().chat.completions.create({ model, messages: ASK, tools: CHAT_TOOLS });
  const choice = completion.choices[0];
  const call = choice.message.tool_calls[0];
  const answer = await openai().chat.completions.create({
    model,
    tools: CHAT_TOOLS,
    messages: [...ASK, choice.message, { role: "tool", tool_call_id: call.id, content: "Sunny, 21 C" }],
  });
  return {
    finish: choice.finish_reason,
    name: call.function.name,
    arguments: JSON.parse(call.function.arguments),
    answer: answer.choices[0].message.content,
  };
}

async function responsesPlain(model) {
  const response = await openai().responses.create({ model, input: "Hello from node" });
  return { text: response.output_text, status: response.status, usage: response.usage };
}

async function messagesPlain(model) {
  const message = await anthropic().messages.create({ model, max_tokens: 200, messages: HELLO });
  return { text: message.content[0].text, model: message.model, stop: message.stop_reason, usage: message.usage };
}

async function messagesStream(model, tools) {
  const stream = anthropic().messages.stream({ model, max_tokens: 200, messages: tools ? ASK : HELLO, tools });
  const events = [];
  let pieces = 0;
  stream.on("streamEvent", (event) => events.push(event.type));
  stream.on("text", () => (pieces += 1));
  const final = await stream.finalMessage();
  return { events, pieces, stop: final.stop_reason, content: final.content, usage: final.usage };
}

async function messagesTools(model) {
  const message = await anthropic().messages.create({ model, max_tokens: 200, messages: ASK, tools: MESSAGES_TOOLS });
  const use = message.content.find((block) => block.type === "tool_use");
  const answer = await anthropic().messages.create({
    model,
    max_tokens: 200,
    tools: MESSAGES_TOOLS,
    messages: [
      ...ASK,
      { role: "assistant", content: message.content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "Sunny, 21 C" }] },
    ],
  });
  return { stop: message.stop_reason, name: use.name, input: use.input, answer: answer.content[0].text };
}

const SCENARIOS = {
  openai_plain: () => chatPlain("gpt-4o"),
  openai_stream: () => chatStream("gpt-4o"),
  openai_tools: () => chatTools("gpt-4o"),
  openai_to_anthropic_plain: () => chatPlain("claude-sonnet-4-5"),
  openai_to_anthropic_stream: () => chatStream("claude-sonnet-4-5"),
  openai_to_anthropic_stream_tools: () => chatStream("claude-sonnet-4-5", CHAT_TOOLS),
  openai_to_anthropic_tools: () => chatTools("claude-sonnet-4-5"),
  openai_responses_to_anthropic: () => responsesPlain("claude-sonnet-4-5"),
  anthropic_plain: () => messagesPlain("claude-sonnet-4-5"),
  anthropic_stream: () => messagesStream("claude-sonnet-4-5"),
  anthropic_tools: () => messagesTools("claude-sonnet-4-5"),
  anthropic_to_openai_plain: () => messagesPlain("gpt-4o"),
  anthropic_to_openai_stream: () => messagesStream("gpt-4o"),
  anthropic_to_openai_stream_tools: () => messagesStream("gpt-4o", MESSAGES_TOOLS),
  anthropic_to_openai_tools: () => messagesTools("gpt-4o"),
};

// The typed errors: the SDK call itself, with a key Keygate refuses.
const ERRORS = {
  openai_401: () => openai(keys.unknown).chat.completions.create({ model: "gpt-4o", messages: HELLO }),
  openai_403: () => openai(keys["gpt-only"]).chat.completions.create({ model: "claude-sonnet-4-5", messages: HELLO }),
  anthropic_401: () => anthropic(keys.unknown).messages.create({ model: "gpt-4o", max_tokens: 10, messages: HELLO }),
  anthropic_403: () =>
    anthropic(keys["gpt-only"]).messages.create({ model: "claude-sonnet-4-5", max_tokens: 10, messages: HELLO }),
};

const results = {};
for (const [name, run] of Object.entries({ ...SCENARIOS, ...ERRORS })) {
  try {
    results[name] = { ok: true, value: await run() };
  } catch (error) {
    results[name] = {
      ok: false,
      class: error.constructor.name,
      status: error.status ?? null,
      typed: error instanceof OpenAI.APIError || error instanceof Anthropic.APIError,
      message: String(error.message).slice(0, 500),
      shouldRetry: error.headers?.get?.("x-should-retry") ?? null,
    };
  }
}
process.stdout.write(JSON.stringify(results));
