import { signIn } from "../auth/session";

export function Landing({ problem }: { problem: string | null }) {
  return (
    <section class="landing">
      <h1>Code together, review together.</h1>
      <p class="lede">
        Tandem is a shared room for a pull request or a piece of code: edit the same document
        live with everyone's cursors, chat, discuss the pull request's lines, and get AI review
        findings streamed to the whole room.
      </p>
      {problem !== null && <p role="alert" class="error">{problem}</p>}
      <button type="button" class="primary big" onClick={() => signIn()}>Sign in with GitHub</button>
      <ul class="features">
        <li><strong>Live editing</strong> with labelled cursors, backed by a CRDT: nothing is lost when a connection drops.</li>
        <li><strong>Roles</strong>: owners invite editors and viewers by GitHub login or by link.</li>
        <li><strong>Chat</strong> beside the code, with history.</li>
      </ul>
    </section>
  );
}
