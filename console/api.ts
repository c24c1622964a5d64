// The console's client of the layer's HTTP API: same origin, with the bearer token the user gave
// (XL_API_TOKEN), which is kept in this tab's sessionStorage only.
const TOKEN_KEY = 'xl-console-token';

export const token = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (value: string) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export interface ErrorDetail {
  path: string;
  message: string;
}

/** An answer other than 2xx, with the contract's error body when it has one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type?: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
  }
}

/**
 * The bearer token when the user gave one, and the header `xl console`'s forwarding server asks of
 * the console (a cross-site page cannot send it without a preflight, which that server refuses).
 */
export function authHeaders(): Record<string, string> {
  const t = token.get();
  return { 'x-xl-console': '1', ...(t ? { authorization: `Bearer ${t}` } : {}) };
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...authHeaders() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const error = (json as { error?: { type?: string; message?: string; details?: ErrorDetail[] } } | undefined)?.error;
    throw new ApiError(res.status, error?.message ?? `${method} ${path} answered ${res.status}`, error?.type, error?.details ?? []);
  }
  return json as T;
}
