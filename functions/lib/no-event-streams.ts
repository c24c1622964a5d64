// Stands in for @smithy/core/event-streams in Lambda bundles (an esbuild alias in
// infra/constructs/functions.ts). Every SDK protocol imports event streams dynamically, and a
// single-file bundle inlines that import, about 14 KB in each function; yet no operation the
// handlers call streams events (S3 SelectObjectContent, CloudWatch Logs StartLiveTail would). The S3
// and CloudWatch Logs clients still build a marshaller as they are constructed: they get one that
// names what is missing if it is ever used.
const unsupported = (): never => {
  throw new Error('event streams are not bundled into the Lambda functions (functions/lib/no-event-streams.ts): no handler may call a streaming operation');
};

export const eventStreamSerdeProvider = () => ({ serialize: unsupported, deserialize: unsupported });

export const resolveEventStreamSerdeConfig = <T extends { eventStreamSerdeProvider: (input: T) => unknown }>(input: T) =>
  Object.assign(input, { eventStreamMarshaller: input.eventStreamSerdeProvider(input) });

export class EventStreamSerde {
  constructor() {
    unsupported();
  }
}
