// Runs once, when the MongoDB volume is new (docker-entrypoint-initdb.d):
// the account Casewire connects with (store.events, store.read), allowed
// its own database only. readWrite covers what it does: documents, indexes
// (created at start-up) and `ping`.
const user = process.env.CASEWIRE_MONGO_USER;
const pwd = process.env.CASEWIRE_MONGO_PASSWORD;
if (!user || !pwd) {
  throw new Error("CASEWIRE_MONGO_USER and CASEWIRE_MONGO_PASSWORD must be set");
}
db.getSiblingDB("admin").createUser({
  user,
  pwd,
  roles: [{ role: "readWrite", db: "casewire" }],
});
