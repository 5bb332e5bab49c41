// Security headers of the local stack's own pages (the chat page, the metrics page).

/**
 * Nothing cached or sniffed, no referrer, and a CSP under which only the server's own files run:
 * `connectSrc` names the origins a page may connect to besides its own (the chat page's WebSocket
 * API). `img-src data:` is for an empty inline icon (no /favicon.ico request, no 404 in the console).
 * @param {{ connectSrc?: string[], crossOriginOpener?: boolean }} [options]
 */
export function pageSecurityHeaders({ connectSrc = [], crossOriginOpener = false } = {}) {
  return {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    ...(crossOriginOpener ? { "cross-origin-opener-policy": "same-origin" } : {}),
    "cross-origin-resource-policy": "same-origin",
    "content-security-policy": [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src data:",
      ["connect-src 'self'", ...connectSrc].join(" "),
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; "),
  };
}
