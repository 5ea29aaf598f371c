// @polkadot/api-contract against the devnet, the way dApps and contracts-ui deploy: dry-run the constructor
// with api.call.contractsApi.instantiate, deploy with the gasRequired and storage deposit it returned, find the
// contract through Contracts.ContractInfoOf/CodeInfoOf/PristineCode, query, send a message, decode its events.
// Usage: node contracts.mjs ws://127.0.0.1:PORT path/to/ami_nft.contract 0xSALT
//   -> prints one JSON line with what it saw; exit code 0 on success.
import { readFileSync } from 'node:fs';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Abi, CodePromise, ContractPromise } from '@polkadot/api-contract';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';

const [url, bundlePath, salt] = process.argv.slice(2);
const timer = setTimeout(() => { console.error('timeout'); process.exit(3); }, 80000);

await cryptoWaitReady();
const api = await ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true, throwOnConnect: true });
const alice = new Keyring({ type: 'sr25519' }).addFromUri('//Alice');
const bundle = JSON.parse(readFileSync(bundlePath, 'utf8'));
const abi = new Abi(bundle, api.registry.getChainProperties());

// sign, send, and resolve with the finalized result (or reject on a dispatch error)
function send(tx) {
  return new Promise((resolve, reject) => {
    tx.signAndSend(alice, (result) => {
      if (result.dispatchError) reject(new Error(`dispatch error: ${result.dispatchError.toString()}`));
      else if (result.status.isFinalized) resolve(result);
    }).catch(reject);
  });
}

// 1. the dApp dry-run: runtime API ContractsApi_instantiate (version 2 layout)
const ctor = abi.findConstructor('new');
const dry = await api.call.contractsApi.instantiate(
  alice.address, 0, null, null, { Upload: abi.info.source.wasm }, ctor.toU8a([]), salt);
if (!dry.result.isOk) throw new Error(`instantiate dry-run failed: ${dry.result.toString()}`);
const predicted = dry.result.asOk.accountId.toString();
const gasRequired = dry.gasRequired;
const deposit = dry.storageDeposit.isCharge ? dry.storageDeposit.asCharge.toBigInt() : 0n;

// 2. deploy with exactly what the dry-run returned
const code = new CodePromise(api, abi, abi.info.source.wasm);
const deployed = await send(code.tx.new({ gasLimit: gasRequired, storageDepositLimit: deposit, salt }));
const address = deployed.contract.address.toString();

// 3. what contracts-ui and polkadot-js apps read to show a deployed contract
const info = await api.query.contracts.contractInfoOf(address);
const codeHash = info.unwrap().codeHash.toHex();
const codeInfo = await api.query.contracts.codeInfoOf(codeHash);
const pristine = await api.query.contracts.pristineCode(codeHash);

// 4. query, then send a message with the gas its own dry-run returned, and decode its events. The query's
// limit is the block's max weight as a WeightV2 (`gasLimit: -1` sends a v1 weight, i.e. proof_size 0).
const contract = new ContractPromise(api, abi, address);
const queryGas = { gasLimit: api.registry.createType('WeightV2', api.consts.system.blockWeights.maxBlock) };
const before = await contract.query.totalSupply(alice.address, queryGas);
const mintArgs = ['bafyaudio', 'bafymeta', [[alice.address, 10000]]];
const mintDry = await contract.query.mint(alice.address, queryGas, ...mintArgs);
const minted = await send(contract.tx.mint({ gasLimit: mintDry.gasRequired, storageDepositLimit: null }, ...mintArgs));
const after = await contract.query.totalSupply(alice.address, queryGas);

console.log(JSON.stringify({
  dryRun: {
    refTime: gasRequired.refTime.toString(),
    proofSize: gasRequired.proofSize.toString(),
    deposit: deposit.toString(),
    flags: dry.result.asOk.result.flags.toNumber(),
  },
  predicted,
  address,
  contractInfo: { codeHash, depositBase: info.unwrap().storageBaseDeposit.toString() },
  codeInfo: codeInfo.isSome ? {
    owner: codeInfo.unwrap().owner.toString(),
    refcount: codeInfo.unwrap().refcount.toString(),
    codeLen: codeInfo.unwrap().codeLen.toNumber(),
  } : null,
  pristineLen: pristine.isSome ? pristine.unwrap().length : null,
  wasmLen: abi.info.source.wasm.length,
  supply: [before.output.toJSON(), after.output.toJSON()],
  mintGas: mintDry.gasRequired.refTime.toString(),
  events: minted.contractEvents.map((e) => ({
    name: e.event.identifier, args: Object.fromEntries(e.event.args.map((a, i) => [a.name, e.args[i].toJSON()])),
  })),
  alice: alice.address,
}));
clearTimeout(timer);
await api.disconnect();
process.exit(0);
