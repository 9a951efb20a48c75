import { Get, Injectable, Req, Type } from '@nestjs/common';
import type { Request } from 'express';
import type { StreamingOptions } from '../config/streaming-options.interface';
import { InjectStreamingOptions } from '../streaming.constants';
import { buildAsyncApiDocument, type AsyncApiDocument } from './asyncapi';
import { ApiOperation, ApiProduces, ApiResponse, ApiTags } from './swagger';

/**
 * `GET <routes.asyncapi>` (opt-in): the AsyncAPI 3 document of the socket
 * protocol, with the request's host and this server's WebSocket and SSE paths.
 */
@Injectable()
@ApiTags('streaming')
export class StreamingAsyncApiController {
  /** Where SSE is mounted (set by {@link asyncApiController}); none when SSE is off. */
  protected readonly ssePath: string | undefined = undefined;
  private readonly documents = new Map<boolean, AsyncApiDocument>();

  constructor(@InjectStreamingOptions() private readonly options: StreamingOptions) {}

  @Get()
  @ApiOperation({
    summary: 'AsyncAPI document of the socket protocol',
    description: 'AsyncAPI 3.0 (JSON): the WebSocket requests and events, and the SSE events.',
  })
  @ApiProduces('application/json')
  @ApiResponse({ status: 200, description: 'The AsyncAPI 3.0 document.', schema: { type: 'object' } })
  document(@Req() req: Request): AsyncApiDocument {
    const secure = req.secure;
    let doc = this.documents.get(secure);
    if (!doc) {
      doc = buildAsyncApiDocument({ wsPath: this.options.wsPath, ssePath: this.ssePath ?? false, secure });
      this.documents.set(secure, doc);
    }
    // The host the client asked for (not cached: any Host header would be a new entry).
    const host = req.headers.host ?? 'localhost';
    const servers = Object.fromEntries(
      Object.entries(doc.servers).map(([name, server]) => [name, { ...(server as object), host }]),
    );
    return { ...doc, servers };
  }
}

/** {@link StreamingAsyncApiController} for an app whose SSE route is at `ssePath` (undefined: off). */
export function asyncApiController(ssePath: string | undefined): Type<StreamingAsyncApiController> {
  class AsyncApiController extends StreamingAsyncApiController {
    protected override readonly ssePath = ssePath === undefined ? undefined : `/${ssePath}`;
  }
  Object.defineProperty(AsyncApiController, 'name', { value: StreamingAsyncApiController.name });
  return AsyncApiController;
}
