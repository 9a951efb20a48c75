/**
 * The request types of the socket protocol with their DTO classes, read from
 * the dispatcher's own handler table, so a request type added there is in
 * the generated documents without any change here.
 */
import { RequestDispatcherService } from '../protocol/request-dispatcher.service';

/** A request type and the class its `data` is validated with (none: `data` is not read). */
export interface RequestSpec {
  type: string;
  dto?: new () => object;
}

type HandlerTable = Record<string, { dto?: new () => object }>;

/**
 * `RequestDispatcherService.buildHandlers()` run on a bare instance: the
 * table only pairs each type with its DTO and a closure over the services,
 * which are not called (nor needed) to read it.
 */
export function requestTable(): RequestSpec[] {
  const bare = Object.create(RequestDispatcherService.prototype) as { buildHandlers(): HandlerTable };
  const table = bare.buildHandlers();
  return Object.entries(table).map(([type, h]) => (h.dto ? { type, dto: h.dto } : { type }));
}
