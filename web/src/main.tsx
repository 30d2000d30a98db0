import { render } from "preact";
import { App } from "./app";
import { useTokenSource } from "./api/client";
import { getToken, restore } from "./auth/session";
import { currentPath } from "./lib/router";
import "./styles.css";

useTokenSource(getToken);
// The callback page signs in by itself; everywhere else the refresh cookie may sign us in.
if (currentPath.value !== "/auth/callback") void restore();

const root = document.getElementById("app");
if (root !== null) render(<App />, root);
