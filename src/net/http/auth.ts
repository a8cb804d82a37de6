// The bearer credential of a request, read the same way by both HTTP servers
// (the pod's boot server and the central API).

/**
 * The credential of `Authorization: Bearer <token>`, or undefined when the
 * header is absent, names another scheme or carries nothing. The scheme is
 * matched case-insensitively (RFC 7235 §2.1: `bearer`, `BEARER` are the same
 * scheme); the token itself is returned as sent.
 */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const m = /^[ \t]*bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  return m?.[1];
}
