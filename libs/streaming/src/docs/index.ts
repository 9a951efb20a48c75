/** Machine-readable API documents: the AsyncAPI document of the socket protocol, OpenAPI pieces of the REST routes. */
export { buildAsyncApiDocument } from './asyncapi';
export type { AsyncApiDocument, AsyncApiDocumentOptions } from './asyncapi';
export {
  STREAMING_API_KEY_SECURITY,
  STREAMING_BEARER_SECURITY,
  StreamingHttpErrorBody,
  openApiSchema,
  streamingOpenApiSecuritySchemes,
} from './openapi';
export type { OpenApiSchema, StreamingSecurityScheme } from './openapi';
