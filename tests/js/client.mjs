// One MCP client run against a server, as an npm user would write it: tools/list, then one tool call.
// Usage: node client.mjs <v1|v2> <mcp url> <notebook path>; the token comes from MCP_TOKEN (never argv).
// Prints one JSON line: what the client saw, or {"error": message} (exit code 1) when it failed.
import * as v1 from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import * as v2 from "@modelcontextprotocol/client";

const [sdk, url, notebookPath] = process.argv.slice(2);
const requestInit = { headers: { Authorization: `Bearer ${process.env.MCP_TOKEN}` } };
const info = { name: `npm-${sdk}-client`, version: "1.0.0" };

function connect() {
  if (sdk === "v1") {
    return [new v1.Client(info), new V1Transport(new URL(url), { requestInit })];
  }
  // v2 probes the server and speaks the 2026-07-28 era when it can.
  const client = new v2.Client(info, { versionNegotiation: { mode: "auto" } });
  return [client, new v2.StreamableHTTPClientTransport(new URL(url), { requestInit })];
}

const [client, transport] = connect();
try {
  await client.connect(transport);
  const listed = await client.listTools();
  const called = await client.callTool({ name: "get_notebook", arguments: { path: notebookPath } });
  const refused = await client.callTool({ name: "get_notebook", arguments: { path: notebookPath, cell: 1 } });
  const protocolVersion =
    typeof client.getNegotiatedProtocolVersion === "function"
      ? client.getNegotiatedProtocolVersion()
      : transport.protocolVersion;
  console.log(
    JSON.stringify({
      protocolVersion,
      sessionId: transport.sessionId ?? null,
      server: client.getServerVersion() ?? null,
      tools: listed.tools.map((tool) => ({ name: tool.name, title: tool.title, annotations: tool.annotations })),
      called: { isError: called.isError ?? false, structuredContent: called.structuredContent },
      refused: { isError: refused.isError ?? false, structuredContent: refused.structuredContent },
    }),
  );
  if (transport.sessionId) await transport.terminateSession();
  await client.close();
} catch (error) {
  // v1 puts the response body in the message; v2 keeps it as the error's data.
  console.log(JSON.stringify({ error: String(error?.message ?? error), body: error?.data?.text ?? null }));
  process.exitCode = 1;
  await client.close().catch(() => {});
}
