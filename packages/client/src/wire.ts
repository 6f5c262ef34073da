/**
 * The REST contract's operations, typed from the generated OpenAPI types
 * (`generated/openapi.ts`): each call names its `operationId`, and its path parameters, query,
 * JSON body and JSON answer are the document's types for that operation. `ROUTES` maps each
 * operation the client uses to its method and path template, and the compiler checks every
 * entry against the document's `paths` (a wrong method or path does not compile).
 */
import { NotFoundError, ValidationError } from "./errors.js";
import type { components, operations, paths } from "./generated/openapi.js";
import type { HttpClient, RequestSpec } from "./http.js";

/** The document's named schemas (snake_case, as on the wire). */
export type Schemas = components["schemas"];

export type OperationId = keyof operations;
type Method = RequestSpec["method"];

/** `[method, template]` pairs that are this operation in the document's `paths`. */
type RouteOf<Id extends OperationId> = {
  [P in keyof paths]: {
    [M in Method]: paths[P][Lowercase<M>] extends operations[Id] ? readonly [M, P] : never;
  }[Method];
}[keyof paths];

/** The operations the client calls, as in the document (checked by `satisfies`). */
export const ROUTES = {
  health: ["GET", "/health"],
  uploadFile: ["POST", "/v1/files"],
  listFiles: ["GET", "/v1/files"],
  downloadFile: ["GET", "/v1/files/{file_id}"],
  deleteFile: ["DELETE", "/v1/files/{file_id}"],
  execute: ["POST", "/v1/execute"],
  executeStream: ["POST", "/v1/execute/stream"],
  createSession: ["POST", "/v1/sessions"],
  listSessions: ["GET", "/v1/sessions"],
  getSession: ["GET", "/v1/sessions/{id}"],
  deleteSession: ["DELETE", "/v1/sessions/{id}"],
  keepalive: ["POST", "/v1/sessions/{id}/keepalive"],
  sessionExecute: ["POST", "/v1/sessions/{id}/execute"],
  sessionExecuteStream: ["POST", "/v1/sessions/{id}/execute/stream"],
  sessionBash: ["POST", "/v1/sessions/{id}/bash"],
  sessionBashStream: ["POST", "/v1/sessions/{id}/bash/stream"],
  listSessionFiles: ["GET", "/v1/sessions/{id}/files"],
  copyFileToSession: ["POST", "/v1/sessions/{id}/files"],
  writeSessionFile: ["PUT", "/v1/sessions/{id}/files/{path}"],
  readSessionFile: ["GET", "/v1/sessions/{id}/files/{path}"],
} as const satisfies { [Id in OperationId]?: RouteOf<Id> };

export type ClientOperation = keyof typeof ROUTES;

type JsonContent<T> = T extends { content: { "application/json": infer B } } ? B : never;
type Success<R> = R extends { 200: infer A } ? A : R extends { 201: infer A } ? A : never;

/** The JSON body an operation takes (`never` when it takes none, or not JSON). */
export type RequestJson<Id extends OperationId> = JsonContent<NonNullable<operations[Id]["requestBody"]>>;
/** The JSON body of an operation's success answer (200 or 201). */
export type ResponseJson<Id extends OperationId> = JsonContent<Success<operations[Id]["responses"]>>;
/** The stream events of the `*Stream` operations, from the document's components. */
export type StreamResultEvent = Schemas["StreamResultEvent"];

type PathParams<Id extends OperationId> = operations[Id]["parameters"]["path"];
type QueryParams<Id extends OperationId> = operations[Id]["parameters"]["query"];

/** One call of operation `Id`: only the parts the document gives it can be passed. */
export type Call<Id extends ClientOperation> = ([PathParams<Id>] extends [undefined]
  ? { params?: undefined }
  : { params: NonNullable<PathParams<Id>> }) &
  ([QueryParams<Id>] extends [undefined] ? { query?: undefined } : { query?: QueryParams<Id> }) &
  ([RequestJson<Id>] extends [never] ? { json?: undefined } : { json: RequestJson<Id> }) &
  Pick<RequestSpec, "body" | "contentType" | "accept" | "okStatuses" | "signal">;

/**
 * A workspace path as URL segments. Paths the server would answer 422 for because of their
 * segments (absolute, empty, "." or "..") are refused here with the same ValidationError:
 * sent in a URL, a ".." segment would be resolved away by URL parsing and reach another route.
 */
function workspaceSegments(path: string): string {
  const segments = path.split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) {
    throw new ValidationError({
      status: 422,
      detail: `path: ${JSON.stringify(path)} must be relative to /workspace, without empty, "." or ".." segments`,
    });
  }
  return segments.map(encodeURIComponent).join("/");
}

/** One path segment. An id of only dots would be resolved away by URL parsing (another route). */
function segment(name: string, value: string): string {
  if (/^\.*$/.test(value)) {
    const what = name === "id" ? "session" : "file";
    throw new NotFoundError({ status: 404, detail: `${what} ${JSON.stringify(value)} not found` });
  }
  return encodeURIComponent(value);
}

/** The path template of `id` with its parameters encoded into it. */
export function routePath(template: string, params: Record<string, string> | undefined): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params?.[name];
    if (value === undefined) throw new TypeError(`missing path parameter ${name} for ${template}`);
    return name === "path" ? workspaceSegments(value) : segment(name, value);
  });
}

/** Calls the contract's operations by `operationId` through the HTTP layer (retries, errors). */
export class Api {
  constructor(readonly http: HttpClient) {}

  /** The raw answer of a successful call (typed errors otherwise). */
  request<Id extends ClientOperation>(id: Id, call: Call<Id>): Promise<Response> {
    const [method, template] = ROUTES[id];
    const { params, query, json, ...rest } = call as Call<Id> & {
      params?: Record<string, string>;
      query?: RequestSpec["query"];
      json?: unknown;
    };
    return this.http.request({ ...rest, method, path: routePath(template, params), query, json });
  }

  /** The parsed JSON answer of a successful call, typed as the document says. */
  async json<Id extends ClientOperation>(id: Id, call: Call<Id>): Promise<ResponseJson<Id>> {
    const res = await this.request(id, { accept: "application/json", ...call });
    return (await res.json()) as ResponseJson<Id>;
  }
}
