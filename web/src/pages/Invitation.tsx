import { useEffect, useState } from "preact/hooks";
import { api, type ApiError, call, type Schemas } from "../api/client";
import { navigate } from "../lib/router";

type Preview = Schemas["PreviewOut"];

const GONE: Record<string, string> = {
  expired: "This invitation has expired. Ask the session's owner for a new one.",
  revoked: "The owner withdrew this invitation.",
  used: "This invitation has already been used.",
};

export function Invitation({ token }: { token: string }) {
  const [preview, setPreview] = useState<Preview | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    call(api.POST("/api/v1/invitations/preview", { body: { token } }))
      .then(setPreview)
      .catch((e: unknown) => setError((e as ApiError).status === 404
        ? "This invitation link is not valid: check that you copied all of it."
        : (e as ApiError).message));
  }, [token]);

  async function accept() {
    setBusy(true);
    setError(null);
    try {
      const accepted = await call(api.POST("/api/v1/invitations/accept", { body: { token } }));
      navigate(`/sessions/${accepted.session.id}`, { replace: true });
    } catch (e) {
      setError((e as ApiError).message);
      setBusy(false);
    }
  }

  return (
    <section class="page narrow invitation">
      <h1>Invitation</h1>
      {preview === null && error === null && <p role="status">Looking up the invitation…</p>}
      {preview !== null && (
        <>
          <p>
            {preview.invited_by.github_login} invites you to <strong>{preview.session.title}</strong> as
            {" "}<span class={`badge role-${preview.role}`}>{preview.role}</span>.
          </p>
          {preview.member_role !== null && (
            <p>You are already in this session as {preview.member_role}.{" "}
              <a href={`/sessions/${preview.session.id}`}>Open the session</a></p>
          )}
          {preview.member_role === null && (preview.status === "pending"
            ? <button type="button" class="primary" disabled={busy} onClick={() => void accept()}>Accept</button>
            : <p role="alert" class="error">{GONE[preview.status] ?? `This invitation is ${preview.status}.`}</p>)}
        </>
      )}
      {error !== null && <p role="alert" class="error">{error}</p>}
      <p><a href="/">Back to your sessions</a></p>
    </section>
  );
}
