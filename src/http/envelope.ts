/**
 * ITFlow v1's response envelope: "success" is the string "True"/"False", as v1 sends it.
 */
export interface SuccessEnvelope<T> {
  success: 'True';
  count: number;
  data: T[];
}

export interface FailureEnvelope {
  success: 'False';
  message: string;
}

export function ok<T>(data: T[]): SuccessEnvelope<T> {
  return { success: 'True', count: data.length, data };
}

export function fail(message: string): FailureEnvelope {
  return { success: 'False', message };
}
