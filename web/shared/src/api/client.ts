// The one HTTP client of the console: a bearer token from the session (kept
// in memory only), RFC 9457 problem details turned into ApiError, and one
// quiet token refresh when the server answers 401.
import type { Problem } from "./types";

export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly issues: ValidationIssue[];

  constructor(status: number, problem: Partial<Problem> & { errors?: ValidationIssue[] }) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
    this.status = status;
    this.type = problem.type ?? "about:blank";
    this.title = problem.title ?? `HTTP ${status}`;
    this.issues = problem.errors ?? [];
  }

  /** The problem type's own name: "totp-required" of "urn:panic-alert:problem:totp-required". */
  get kind(): string {
    return this.type.split(/[/:]/).pop() ?? this.type;
  }
}

export interface TokenSource {
  /** The current access token, or null when signed out. */
  token(): string | null;
  /** Refresh the session once; false when it cannot be refreshed (signed out). */
  refresh(): Promise<boolean>;
}

let tokens: TokenSource | null = null;

export function setTokenSource(source: TokenSource | null): void {
  tokens = source;
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

interface Options {
  body?: unknown;
  query?: Query;
  accept?: string;
  /** Do not send the bearer token (sign-in, refresh). */
  anonymous?: boolean;
  /** More request headers (e.g. `Idempotency-Key`). */
  headers?: Record<string, string>;
}

async function send(method: string, path: string, options: Options): Promise<Response> {
  const headers: Record<string, string> = { Accept: options.accept ?? "application/json", ...options.headers };
  const token = options.anonymous ? null : (tokens?.token() ?? null);
  if (token) headers.Authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  return fetch(withQuery(path, options.query), { method, headers, body, credentials: "omit" });
}

async function problemOf(response: Response): Promise<ApiError> {
  let problem: Partial<Problem> & { errors?: ValidationIssue[] } = {};
  try {
    problem = (await response.json()) as typeof problem;
  } catch {
    problem = { title: response.statusText };
  }
  return new ApiError(response.status, problem);
}

/** One request; a 401 gets one refresh and one retry. Throws ApiError. */
export async function raw(method: string, path: string, options: Options = {}): Promise<Response> {
  let response = await send(method, path, options);
  if (response.status === 401 && !options.anonymous && tokens && (await tokens.refresh())) {
    response = await send(method, path, options);
  }
  if (!response.ok) throw await problemOf(response);
  return response;
}

export async function request<T>(method: string, path: string, options: Options = {}): Promise<T> {
  const response = await raw(method, path, options);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export const api = {
  get: <T>(path: string, query?: Query) => request<T>("GET", path, { query }),
  post: <T>(path: string, body?: unknown) => request<T>("POST", path, { body }),
  put: <T>(path: string, body?: unknown) => request<T>("PUT", path, { body }),
  del: (path: string) => request<undefined>("DELETE", path),
};
