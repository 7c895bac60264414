// Composes subgraph SDLs into an Apollo Federation 2 supergraph with @theguild/federation-composition
// (installed by `npm ci` from package-lock.json). Usage: node compose.mjs NAME=FILE NAME=FILE ...
// Prints {"errors": [...], "supergraphSdl": "..."} and exits 1 when composition fails.
import { readFileSync } from "node:fs";
import { parse } from "graphql";
import { composeServices } from "@theguild/federation-composition";

const services = process.argv.slice(2).map((argument) => {
  const [name, file] = argument.split("=");
  return { name, typeDefs: parse(readFileSync(file, "utf8")) };
});
const result = composeServices(services);
const errors = (result.errors ?? []).map((error) => error.message);
process.stdout.write(JSON.stringify({ errors, supergraphSdl: result.supergraphSdl ?? null }));
process.exit(errors.length ? 1 : 0);
