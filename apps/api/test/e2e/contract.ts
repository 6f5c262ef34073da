/**
 * Checks real responses against the OpenAPI document the server serves: the status must be
 * one the operation documents, and a JSON body (or each SSE event's data) must validate
 * against the operation's response schema (ajv, JSON Schema 2020-12 as OpenAPI 3.1 uses).
 * Used by the e2e suite on every call it makes, so the document cannot drift from what the
 * server really answers.
 */
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";

interface MediaType {
  schema?: object;
  "x-sse-events"?: Record<string, object>;
}
interface ResponseObject {
  content?: Record<string, MediaType>;
}
interface OpenApiDoc {
  paths: Record<string, Record<string, { responses: Record<string, ResponseObject> }>>;
  components: { schemas: Record<string, object> };
}

const DOC_ID = "urn:code-interpreter:openapi";

export class ContractChecker {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  private readonly routes: Array<{ re: RegExp; template: string; params: number }>;
  private readonly compiled = new Map<string, ValidateFunction>();
  /** How many responses were checked against a schema (so a test can see it really ran). */
  checked = 0;

  constructor(private readonly doc: OpenApiDoc) {
    this.ajv.addSchema({ $id: DOC_ID, components: doc.components });
    this.routes = Object.keys(doc.paths)
      .map((template) => {
        const source = template
          .split(/(\{[^}]+\})/)
          .map((part) =>
            part === "{path}"
              ? ".+"
              : part.startsWith("{")
                ? "[^/]+"
                : part.replace(/[.*+?^$()|[\]\\]/g, "\\$&"),
          )
          .join("");
        return { re: new RegExp(`^${source}$`), template, params: (template.match(/\{/g) ?? []).length };
      })
      .sort((a, b) => a.params - b.params);
  }

  private validator(schema: object): ValidateFunction {
    const key = JSON.stringify(schema);
    let fn = this.compiled.get(key);
    if (!fn) {
      // Local refs (#/components/...) resolve against the document.
      const rewritten = JSON.parse(key.replaceAll('"#/components/', `"${DOC_ID}#/components/`)) as object;
      fn = this.ajv.compile(rewritten);
      this.compiled.set(key, fn);
    }
    return fn;
  }

  private validate(what: string, schema: object, value: unknown): void {
    const fn = this.validator(schema);
    if (!fn(value)) {
      throw new Error(
        `${what} does not match the OpenAPI document: ${this.ajv.errorsText(fn.errors)}\n${JSON.stringify(value).slice(0, 500)}`,
      );
    }
    this.checked += 1;
  }

  /** Throws when the answer is not what the document says `method path` answers. */
  check(method: string, url: string, status: number, contentType: string, body: Buffer): void {
    const path = new URL(url, "http://x").pathname;
    const route = this.routes.find(
      (r) => r.re.test(path) && this.doc.paths[r.template]![method.toLowerCase()],
    );
    const what = `${method} ${path} → ${status}`;
    if (!route) {
      // Unknown routes (and methods): the document has no operation; the answer is an error.
      if (status >= 400)
        this.validate(what, { $ref: "#/components/schemas/Error" }, JSON.parse(body.toString()));
      return;
    }
    const op = this.doc.paths[route.template]![method.toLowerCase()]!;
    const response = op.responses[String(status)];
    if (!response) {
      throw new Error(
        `${what}: status not documented for ${route.template} (${Object.keys(op.responses).join(", ")})`,
      );
    }
    if (!response.content) {
      if (body.length > 0) throw new Error(`${what}: documented without a body, got ${body.length} bytes`);
      return;
    }
    const mediaType = contentType.split(";")[0]!.trim();
    const media = response.content[mediaType];
    if (!media) {
      throw new Error(
        `${what}: Content-Type ${mediaType} not documented (${Object.keys(response.content).join(", ")})`,
      );
    }
    if (mediaType === "application/json" && media.schema) {
      this.validate(what, media.schema, JSON.parse(body.toString("utf8")));
    } else if (mediaType === "text/event-stream" && media["x-sse-events"]) {
      this.checkEvents(what, media["x-sse-events"], body.toString("utf8"));
    }
  }

  private checkEvents(what: string, events: Record<string, object>, text: string): void {
    for (const block of text.split(/\r?\n\r?\n/)) {
      let event = "message";
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trim());
      }
      if (data.length === 0) continue;
      const schema = events[event];
      if (!schema) throw new Error(`${what}: SSE event ${JSON.stringify(event)} is not documented`);
      this.validate(`${what} (event ${event})`, schema, JSON.parse(data.join("\n")));
    }
  }
}
