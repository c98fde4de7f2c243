// Creates blob containers in Azurite (idempotent). Usage: node create-containers.js NAME...
// Uses the official SDK's development-storage connection string, so the well-known account key
// comes from the SDK itself, not from this repository. AZURITE_BLOB_STORAGE_URL overrides the port.
const { BlobServiceClient, StorageSharedKeyCredential } = require("@azure/storage-blob");

async function main() {
  const url = process.env.AZURITE_BLOB_STORAGE_URL || "http://127.0.0.1:10000";
  const dev = BlobServiceClient.fromConnectionString("UseDevelopmentStorage=true");
  const cred = dev.credential;
  if (!(cred instanceof StorageSharedKeyCredential)) throw new Error("no development credential in the SDK");
  const client = new BlobServiceClient(`${url}/${cred.accountName}`, cred);
  for (const name of process.argv.slice(2)) {
    const res = await client.getContainerClient(name).createIfNotExists();
    if (res.succeeded) console.error(`stack: azurite: created container ${name}`);
  }
}

main().catch((e) => { console.error(`create-containers: ${e.message}`); process.exit(1); });
