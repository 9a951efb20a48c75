import {
  Body,
  Get,
  Header,
  HttpCode,
  Injectable,
  Param,
  Post,
  Query,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { ApiDisconnectBody } from '../api/server-api.dto';
import { ApiErrorResponses } from '../docs/openapi';
import {
  ApiBearerAuth,
  ApiExcludeEndpoint,
  ApiOperation,
  ApiParam,
  ApiPropertyOptional,
  ApiResponse,
  ApiTags,
} from '../docs/swagger';
import { AdminConsoleService } from './admin-console.service';
import type {
  AdminConnections,
  AdminModerationEntry,
  AdminOverview,
  AdminRooms,
} from './admin-console.types';
import { ADMIN_PAGE } from './admin-page';

class AdminRoomsQuery {
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: 500,
    description: 'Rooms listed (default 100).',
  })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  limit?: number;
}

class AdminConnectionsQuery {
  @ApiPropertyOptional({ description: 'Only this user.' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  user?: string;
}

/** `GET <routes.admin>`: the admin console page (static; it asks for a token and reads the API below). */
@Injectable()
export class AdminPageController {
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  @Header(
    'Content-Security-Policy',
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  )
  @ApiExcludeEndpoint()
  page(): string {
    return ADMIN_PAGE;
  }
}

/**
 * `<routes.admin>/api`: what the console reads, mounted behind the admin
 * guard (the `adminRole` claim, or `routes.adminGuards`) and then the REST
 * rate limit (see `routeControllers`).
 */
@Injectable()
@ApiTags('streaming admin')
@ApiBearerAuth()
@ApiErrorResponses(401, 403, 429)
@UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }))
export class AdminApiController {
  constructor(private readonly admin: AdminConsoleService) {}

  @Get('overview')
  @ApiOperation({ summary: 'Nodes (connections, heartbeats, message rates) and cluster totals' })
  @ApiResponse({ status: 200, description: 'The overview.' })
  overview(): Promise<AdminOverview> {
    return this.admin.overview();
  }

  @Get('rooms')
  @ApiOperation({ summary: 'Rooms by member count, with message rates' })
  @ApiResponse({ status: 200, description: 'The rooms.' })
  @ApiErrorResponses(400)
  rooms(@Query() query: AdminRoomsQuery): Promise<AdminRooms> {
    return this.admin.rooms(query.limit);
  }

  @Get('connections')
  @ApiOperation({ summary: "This node's connections and the users online on every node" })
  @ApiResponse({ status: 200, description: 'The connections.' })
  @ApiErrorResponses(400)
  connections(@Query() query: AdminConnectionsQuery): Promise<AdminConnections> {
    return this.admin.connections(query.user);
  }

  @Get('moderation')
  @ApiOperation({ summary: 'The latest moderation actions of the cluster, newest first' })
  @ApiResponse({ status: 200, description: 'The actions.' })
  moderation(): { actions: AdminModerationEntry[] } {
    return { actions: this.admin.moderation() };
  }

  @Post('users/:id/disconnect')
  @HttpCode(200)
  @ApiOperation({ summary: "Disconnect a user's connections on every node (close code 4403)" })
  @ApiParam({ name: 'id', description: 'The user id.' })
  @ApiResponse({ status: 200, description: 'How many were closed (null when unknown).' })
  @ApiErrorResponses(400)
  disconnect(
    @Param('id') userId: string,
    @Body() body: ApiDisconnectBody,
  ): Promise<{ disconnected: number | null }> {
    return this.admin.disconnectUser(userId, body.reason);
  }
}
