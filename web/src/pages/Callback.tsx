import { useEffect, useState } from "preact/hooks";
import type { ApiError } from "../api/client";
import { completeSignIn, signIn } from "../auth/session";
import { currentQuery, navigate } from "../lib/router";

export function Callback() {
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    completeSignIn(currentQuery.value)
      .then((target) => { if (live) navigate(target, { replace: true }); })
      .catch((error: unknown) => { if (live) setProblem((error as ApiError).message); });
    return () => { live = false; };
  }, []);
  if (problem === null) return <p class="loading" role="status">Finishing sign-in…</p>;
  return (
    <section class="page narrow">
      <h1>Sign-in did not finish</h1>
      <p role="alert" class="error">{problem}</p>
      <button type="button" class="primary" onClick={() => signIn("/")}>Sign in with GitHub</button>
    </section>
  );
}
