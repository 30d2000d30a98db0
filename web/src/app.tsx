import { useEffect, useState } from "preact/hooks";
import type { ApiError } from "./api/client";
import { authProblem, authStatus, currentUser, signOut } from "./auth/session";
import { currentPath, match, onLinkClick } from "./lib/router";
import { Callback } from "./pages/Callback";
import { Invitation } from "./pages/Invitation";
import { Landing } from "./pages/Landing";
import { Sessions } from "./pages/Sessions";
import { Room } from "./room/Room";

function Header() {
  const user = currentUser.value;
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);

  async function leave() {
    setBusy(true);
    setProblem(null);
    try {
      await signOut();
    } catch (error) {
      setProblem(`Could not sign out: ${(error as ApiError).message}. You are still signed in; try again.`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <header class="app-header">
      <a class="brand" href="/">Tandem</a>
      {user !== null && (
        <div class="who">
          <img class="avatar" src={user.avatar_url} alt="" width={28} height={28} />
          <span class="login">{user.github_login}</span>
          <button type="button" class="secondary" disabled={busy} onClick={() => void leave()}>Sign out</button>
        </div>
      )}
      {problem !== null && user !== null && (
        <p role="alert" class="header-alert">{problem}</p>
      )}
    </header>
  );
}

function Page() {
  const route = match(currentPath.value);
  if (route.name === "callback") return <Callback />;
  const status = authStatus.value;
  if (status === "unknown") {
    return <p class="loading" role="status">{authProblem.value ?? "Signing you in…"}</p>;
  }
  if (status === "signed-out") return <Landing problem={authProblem.value} />;
  switch (route.name) {
    case "home":
      return <Sessions />;
    case "room":
      return <Room sessionId={route.sessionId} key={route.sessionId} />;
    case "invitation":
      return <Invitation token={route.token} key={route.token} />;
    case "not-found":
      return (
        <section class="page">
          <h1>Page not found</h1>
          <p>Nothing lives at this address. <a href="/">Back to your sessions</a></p>
        </section>
      );
  }
}

export function App() {
  useEffect(() => {
    document.addEventListener("click", onLinkClick);
    return () => document.removeEventListener("click", onLinkClick);
  }, []);
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <Header />
      <main id="main" tabIndex={-1}>
        <Page />
      </main>
    </>
  );
}

