/** Who is connected: what the authenticator found in the token. */

/** Who is behind a connection, as the authenticator found. */
export interface ConnectionIdentity {
  userId: string;
  sessionId: string;
  name?: string;
  roles: string[];
  /** Token expiry, epoch ms. */
  expiresAt?: number;
  anonymous: boolean;
  metadata: Record<string, unknown>;
}
