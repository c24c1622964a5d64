// The deployed stack, for xl: its API URL (from the stack's outputs) and SigV4 signing with the
// default AWS credential chain.
export async function deployedEndpoint(): Promise<string> {
  throw new Error('no endpoint: pass --endpoint or set XL_ENDPOINT to the deployed API URL (stack output ApiUrl), or start the local layer with `npm start`');
}

export async function signedHeaders(
  _method: string,
  _url: string,
  _body: string | undefined,
  _headers: Record<string, string>,
): Promise<Record<string, string>> {
  throw new Error('signing for the deployed API is not available yet');
}
