/**
 * The OpenAPI 3.1 document of the REST contract, generated from the zod schemas (never
 * hand-written beside them): the operations (openapi/operations.ts), the named schemas and
 * parameters converted with zod's `z.toJSONSchema` (openapi/components.ts), and the document
 * assembled from them (openapi/document.ts).
 */
export { openApiDocument } from "./openapi/document.js";
export { OPERATIONS, type Operation } from "./openapi/operations.js";
