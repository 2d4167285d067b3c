import { Local } from "../mod.ts";
import { conformance } from "./_conformance.ts";

conformance("Local", (options) => new Local("local", options));
