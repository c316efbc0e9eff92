import { type SubmitEvent, useId, useState } from "react";

import { ApiError } from "@panic-alert/shared/api/client";
import { NotAnAdmin, signIn, useSession } from "./session";

/** Sign-in for administrators; asks for the second factor when the server does. */
export function SignIn() {
  const ended = useSession((s) => s.ended);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [needsCode, setNeedsCode] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const errorId = useId();

  async function submit(event: SubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(email, password, needsCode ? code : undefined);
    } catch (caught) {
      if (caught instanceof ApiError && caught.kind === "totp-required") {
        setNeedsCode(true);
        setError("Enter the code from your authenticator app.");
      } else if (caught instanceof ApiError && caught.kind === "totp-invalid") {
        setNeedsCode(true);
        setError("That code was not accepted. Try the current one.");
      } else if (caught instanceof ApiError && caught.status === 429) {
        setError("Too many attempts. Wait a moment and try again.");
      } else if (caught instanceof ApiError && caught.status === 401) {
        setError("Wrong email or password.");
      } else if (caught instanceof NotAnAdmin) {
        setError(caught.message);
      } else {
        setError("The server could not be reached. Try again.");
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="signin">
      <h1>Panic Alert console</h1>
      {ended && <p role="status">{ended}</p>}
      <form onSubmit={(e) => void submit(e)} aria-describedby={error ? errorId : undefined}>
        <label>
          Email
          <input
            type="email"
            autoComplete="username"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
        </label>
        <label>
          Password
          <input
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        {needsCode && (
          <label>
            Authentication code
            <input
              inputMode="numeric"
              autoComplete="one-time-code"
              required
              value={code}
              onChange={(e) => setCode(e.target.value)}
            />
          </label>
        )}
        {error && (
          <p id={errorId} role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
