// What the router mounts: a view's element and how it refreshes itself from the layer.
export interface View {
  title: string;
  root: HTMLElement;
  /** Reads the layer and redraws; throws ApiError when the layer refuses. */
  refresh(): Promise<void>;
  dispose?(): void;
}

export interface Context {
  navigate(hash: string): void;
  /** Says something to screen readers (and shows it) in the page's status line. */
  announce(message: string): void;
}
