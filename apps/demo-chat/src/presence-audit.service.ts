import { Controller, ForbiddenException, Get, Injectable, Logger, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import {
  ConnectionEvent,
  ConnectionIdentity,
  StreamingUser,
  OnConnect,
  OnDisconnect,
  OnPresence,
  PresenceEvent,
  PresenceStatus,
  StreamingAuthGuard,
  StreamingRateLimitGuard,
} from '@nest-streaming/streaming';
import { ApiErrors } from './api-docs';

/** Entries kept by the presence audit log (the oldest are dropped first). */
export const PRESENCE_AUDIT_LIMIT = 1000;

/** One line of the presence audit log (wire-style snake_case, as the API answers it). */
export interface PresenceAuditEntry {
  /** When the event was recorded (ISO 8601 UTC). */
  at: string;
  kind: 'presence' | 'connect' | 'disconnect';
  user_id: string;
  /** `presence` entries: the new status (and custom text, if any). */
  status?: PresenceStatus;
  custom?: string;
  /** `connect` / `disconnect` entries: the connection and its transport. */
  connection_id?: string;
  transport?: 'ws' | 'sse';
}

/**
 * Demo of `@OnPresence`, `@OnConnect` and `@OnDisconnect`: an in-memory audit
 * log of this node's presence changes and connections, bounded to the last
 * {@link PRESENCE_AUDIT_LIMIT} entries, each also logged with Nest's Logger.
 */
@Injectable()
export class PresenceAuditService {
  private readonly logger = new Logger('PresenceAudit');
  /** Ring buffer: `next` is where the next entry goes once it is full. */
  private readonly ring: PresenceAuditEntry[] = [];
  private next = 0;

  /** The audit log, oldest first. */
  get entries(): PresenceAuditEntry[] {
    return [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }

  @OnPresence()
  onPresence({ userId, presence }: PresenceEvent): void {
    const entry: PresenceAuditEntry = {
      at: now(),
      kind: 'presence',
      user_id: userId,
      status: presence.status,
    };
    if (presence.custom !== undefined) entry.custom = presence.custom;
    this.record(entry);
    this.logger.debug(`${userId} is ${presence.status}`);
  }

  @OnConnect()
  onConnect(event: ConnectionEvent): void {
    this.record(connectionEntry('connect', event));
    this.logger.debug(`${event.userId} connected (${event.transport} ${event.connectionId})`);
  }

  @OnDisconnect()
  onDisconnect(event: ConnectionEvent): void {
    this.record(connectionEntry('disconnect', event));
    this.logger.debug(`${event.userId} disconnected (${event.transport} ${event.connectionId})`);
  }

  private record(entry: PresenceAuditEntry): void {
    if (this.ring.length < PRESENCE_AUDIT_LIMIT) {
      this.ring.push(entry);
      return;
    }
    this.ring[this.next] = entry;
    this.next = (this.next + 1) % PRESENCE_AUDIT_LIMIT;
  }
}

const now = (): string => new Date().toISOString();

function connectionEntry(kind: 'connect' | 'disconnect', e: ConnectionEvent): PresenceAuditEntry {
  return { at: now(), kind, user_id: e.userId, connection_id: e.connectionId, transport: e.transport };
}

/**
 * `GET /api/audit/presence`: the presence audit log of this node, oldest first.
 * Admins only (a token with the `admin` role; the demo's login gives it to the
 * names in `DEMO_ADMINS`): it shows everyone's connections.
 */
@Controller('api/audit')
@UseGuards(StreamingAuthGuard, StreamingRateLimitGuard)
@ApiTags('audit')
@ApiBearerAuth()
export class PresenceAuditController {
  constructor(private readonly audit: PresenceAuditService) {}

  @Get('presence')
  @ApiOperation({ summary: "This node's presence audit log, oldest first (admins only)" })
  @ApiResponse({
    status: 200,
    description: 'The log.',
    schema: {
      type: 'object',
      properties: {
        entries: {
          type: 'array',
          items: {
            type: 'object',
            required: ['at', 'kind', 'user_id'],
            properties: {
              at: { type: 'string', format: 'date-time' },
              kind: { type: 'string', enum: ['presence', 'connect', 'disconnect'] },
              user_id: { type: 'string' },
              status: { type: 'string', enum: ['online', 'away', 'busy', 'offline'] },
              custom: { type: 'string' },
              connection_id: { type: 'string' },
              transport: { type: 'string', enum: ['ws', 'sse'] },
            },
          },
        },
      },
    },
  })
  @ApiErrors(401, 403, 429)
  presence(@StreamingUser() user: ConnectionIdentity): { entries: PresenceAuditEntry[] } {
    if (!user.roles.includes('admin')) throw new ForbiddenException('the presence audit is for admins');
    return { entries: this.audit.entries };
  }
}
