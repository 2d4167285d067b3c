import { Local } from "../mod.ts";
import { conformance } from "./_conformance.ts";
import { filesConformance } from "./_files_conformance.ts";

conformance("Local", (options) => new Local("local", options));
filesConformance("Local", (options) => new Local("local", options));
