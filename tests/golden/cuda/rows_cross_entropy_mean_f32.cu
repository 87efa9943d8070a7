{ lambda a:i32[6,1,1]; b:f32[6,50] c:i32[6]. let
    d:f32[6] = fused_cuda[kernel=rows_fed00d45] c b
    e:f32[] = reduce_sum[axes=(0,)] d
    f:f32[] = div e 6.0:f32[]
  in (f,) }
// kernel 0
#include <cuda_fp16.h>
__device__ __forceinline__ float bf16_to_f32(unsigned short v) {
  return __uint_as_float(((unsigned int)v) << 16);
}
// round to nearest even; a NaN becomes the quiet NaN of its sign (as ml_dtypes)
__device__ __forceinline__ unsigned short f32_to_bf16(float f) {
  unsigned int u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)(((u >> 16) & 0x8000u) | 0x7fc0u);
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
// lax.max/min of floats: a NaN operand wins and +0 is above -0 (CUDA's fmax/fmin drop NaN)
template <typename T> __device__ __forceinline__ T fg_max(T a, T b) {
  return a != a ? a : (b != b || b > a || (b == a && signbit(a))) ? b : a;
}
template <typename T> __device__ __forceinline__ T fg_min(T a, T b) {
  return a != a ? a : (b != b || b < a || (b == a && signbit(b))) ? b : a;
}
// integer division as XLA: x / 0 = -1 (all bits set), x % 0 = x, MIN / -1 = MIN, MIN % -1 = 0
__device__ __forceinline__ int fg_div(int a, int b) {
  return b == 0 ? -1 : b == -1 ? (int)(0u - (unsigned int)a) : a / b;
}
__device__ __forceinline__ unsigned int fg_div(unsigned int a, unsigned int b) {
  return b == 0u ? 0xffffffffu : a / b;
}
__device__ __forceinline__ int fg_rem(int a, int b) { return b == 0 ? a : b == -1 ? 0 : a % b; }
__device__ __forceinline__ unsigned int fg_rem(unsigned int a, unsigned int b) {
  return b == 0u ? a : a % b;
}
__device__ __forceinline__ int fg_abs(int a) {  // |MIN| wraps to MIN
  return a < 0 ? (int)(0u - (unsigned int)a) : a;
}
template <typename T> __device__ __forceinline__ T fg_sign(T x) {  // keeps -0 and NaN
  return x > 0 ? (T)1 : x < 0 ? (T)-1 : x;
}
template <typename T> __device__ __forceinline__ T fg_logistic(T x) {  // never overflows
  T e = exp(-fabs(x));
  return x >= 0 ? 1 / (e + 1) : e / (e + 1);
}
// shifts as XLA: the amount read as unsigned; at least the bit width gives 0 (or the sign)
__device__ __forceinline__ unsigned int fg_shl(unsigned int x, unsigned int s) {
  return s < 32u ? x << s : 0u;
}
__device__ __forceinline__ unsigned int fg_shr(unsigned int x, unsigned int s) {
  return s < 32u ? x >> s : 0u;
}
__device__ __forceinline__ int fg_sar(int x, unsigned int s) { return x >> (s < 32u ? s : 31u); }
// float -> integer as XLA: truncate, saturate out of range, NaN -> 0
__device__ __forceinline__ int fg_to_i32(double x) {
  return x != x ? 0 : x >= 2147483647.0 ? 2147483647 : x <= -2147483648.0 ? -2147483647 - 1
         : (int)x;
}
__device__ __forceinline__ unsigned int fg_to_u32(double x) {
  return x != x ? 0u : x >= 4294967295.0 ? 4294967295u : x <= 0.0 ? 0u : (unsigned int)x;
}
#define ADD(a, b) ((a) + (b))
// all threads of the block combine val with op; every thread gets the result
#define BLOCK_REDUCE(val, op, result) \
  red[threadIdx.x] = (val); __syncthreads(); \
  for (int s = blockDim.x / 2; s > 0; s >>= 1) { \
    if (threadIdx.x < s) red[threadIdx.x] = op(red[threadIdx.x], red[threadIdx.x + s]); \
    __syncthreads(); } \
  float result = red[0]; __syncthreads();

extern "C" __global__ void rows_fed00d45(const int* __restrict__ in0, const float* __restrict__ in1, float* __restrict__ out, long long rows) {
  __shared__ float red[256];
  for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
    long long i0 = row;
    int v0 = in0[i0];
    bool v1 = (v0 < 0);
    int v2 = (v0 + 50);
    int v3 = (v1 ? v2 : v0);
    long long v4 = (v3 < 0 ? 0 : (v3 > 49 ? 49 : v3));
    float v5 = in1[i0 * 50 + v4];
    float v6 = -__int_as_float(0x7f800000);
    for (long long j = threadIdx.x; j < 50; j += blockDim.x) {
      float v8 = in1[i0 * 50 + j];
      v6 = fg_max(v6, v8);
    }
    BLOCK_REDUCE(v6, fg_max, v7)
    float v9 = fg_max(-__int_as_float(0x7f800000), v7);
    float v10 = (v5 - v9);
    float v11 = 0.f;
    for (long long j = threadIdx.x; j < 50; j += blockDim.x) {
      float v13 = in1[i0 * 50 + j];
      float v14 = (v13 - v9);
      float v15 = exp(v14);
      v11 = ADD(v11, v15);
    }
    BLOCK_REDUCE(v11, ADD, v12)
    float v16 = log(v12);
    float v17 = (v10 - v16);
    float v18 = ((v3 >= 0 && v3 < 50) ? v17 : __int_as_float(0x7fc00000));
    float v19 = (-v18);
    if (threadIdx.x == 0) out[row] = v19;
  }
}
