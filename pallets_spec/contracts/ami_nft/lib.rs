//! The AMI NFT registry: music tracks with their IPFS CIDs and royalty splits, listens, tags and playlists.
//!
//! Its ABI is described once in `pallets_spec/description.py`; `pallets_spec/model.py` is the executable model
//! of the same rules (same checks in the same order, same events), and a test compares the three.
#![cfg_attr(not(feature = "std"), no_std, no_main)]

#[ink::contract]
pub mod ami_nft {
    use ink::prelude::string::String;
    use ink::prelude::vec::Vec;
    use ink::storage::Mapping;

    /// Royalty splits are in basis points and sum to exactly this.
    pub const BASIS_POINTS: u32 = 10_000;
    /// At most this many royalty recipients per track.
    pub const MAX_SPLITS: usize = 16;
    /// Longest accepted CID, in bytes.
    pub const MAX_CID_LEN: usize = 128;
    /// Longest accepted tag, in bytes.
    pub const MAX_TAG_LEN: usize = 32;
    /// Longest accepted playlist name, in bytes.
    pub const MAX_NAME_LEN: usize = 64;

    /// Why a message was refused. The variant order is the ABI: append only.
    #[derive(Debug, PartialEq, Eq, Clone, Copy)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    pub enum Error {
        /// The caller does not own the token or playlist.
        NotOwner,
        /// Only the contract owner may do this.
        NotContractOwner,
        /// No token with this id.
        TokenNotFound,
        /// No playlist with this id.
        PlaylistNotFound,
        /// Royalty splits: 1..=16 distinct accounts, shares > 0, summing to 10000.
        InvalidSplits,
        /// A CID is empty or longer than 128 bytes.
        InvalidCid,
        /// A tag is empty or longer than 32 bytes.
        InvalidTag,
        /// A listen must last at least one second.
        ZeroSeconds,
        /// The caller is not an oracle.
        NotOracle,
        /// A playlist name is empty or longer than 64 bytes.
        InvalidName,
        /// The track is already in this playlist.
        AlreadyInPlaylist,
    }

    /// What the registry knows about one track.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct TokenInfo {
        pub creator: AccountId,
        pub owner: AccountId,
        pub audio_cid: String,
        pub metadata_cid: String,
        pub royalty_splits: Vec<(AccountId, u16)>,
    }

    /// A curator's playlist.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Playlist {
        pub owner: AccountId,
        pub name: String,
    }

    /// A track was minted.
    #[ink(event)]
    pub struct Minted {
        #[ink(topic)]
        token_id: u64,
        #[ink(topic)]
        creator: AccountId,
        audio_cid: String,
        metadata_cid: String,
        royalty_splits: Vec<(AccountId, u16)>,
    }

    /// A token changed owner.
    #[ink(event)]
    pub struct Transferred {
        #[ink(topic)]
        token_id: u64,
        from: AccountId,
        to: AccountId,
    }

    /// Someone listened to a track.
    #[ink(event)]
    pub struct Listened {
        #[ink(topic)]
        token_id: u64,
        #[ink(topic)]
        listener: AccountId,
        seconds: u32,
    }

    /// A track was tagged.
    #[ink(event)]
    pub struct Tagged {
        #[ink(topic)]
        token_id: u64,
        #[ink(topic)]
        curator: AccountId,
        tag: String,
    }

    /// A playlist was created.
    #[ink(event)]
    pub struct PlaylistCreated {
        #[ink(topic)]
        playlist_id: u64,
        owner: AccountId,
        name: String,
    }

    /// A track was added to a playlist.
    #[ink(event)]
    pub struct PlaylistAdded {
        #[ink(topic)]
        playlist_id: u64,
        #[ink(topic)]
        token_id: u64,
        curator: AccountId,
    }

    /// An oracle was added.
    #[ink(event)]
    pub struct OracleAdded {
        account: AccountId,
    }

    /// An oracle was removed.
    #[ink(event)]
    pub struct OracleRemoved {
        account: AccountId,
    }

    #[ink(storage)]
    pub struct AmiNft {
        owner: AccountId,
        next_token_id: u64,
        next_playlist_id: u64,
        tokens: Mapping<u64, TokenInfo>,
        playlists: Mapping<u64, Playlist>,
        playlist_entries: Mapping<(u64, u64), ()>,
        oracles: Mapping<AccountId, ()>,
    }

    impl AmiNft {
        /// Creates the registry; the caller becomes the contract owner.
        #[ink(constructor)]
        pub fn new() -> Self {
            Self {
                owner: Self::env().caller(),
                next_token_id: 1,
                next_playlist_id: 1,
                tokens: Mapping::default(),
                playlists: Mapping::default(),
                playlist_entries: Mapping::default(),
                oracles: Mapping::default(),
            }
        }

        /// Mints a track owned by the caller and returns its token id (ids start at 1).
        /// `royalty_splits` are (account, basis points): 1..=16 distinct accounts, each share > 0,
        /// summing to exactly 10000. Both CIDs are 1..=128 bytes.
        #[ink(message)]
        pub fn mint(
            &mut self,
            audio_cid: String,
            metadata_cid: String,
            royalty_splits: Vec<(AccountId, u16)>,
        ) -> Result<u64, Error> {
            Self::check_cid(&audio_cid)?;
            Self::check_cid(&metadata_cid)?;
            Self::check_splits(&royalty_splits)?;
            let caller = self.env().caller();
            let token_id = self.next_token_id;
            // u64 ids cannot run out in practice; trapping keeps the registry consistent if they ever did.
            self.next_token_id = token_id.checked_add(1).expect("token ids exhausted");
            let info = TokenInfo {
                creator: caller,
                owner: caller,
                audio_cid: audio_cid.clone(),
                metadata_cid: metadata_cid.clone(),
                royalty_splits: royalty_splits.clone(),
            };
            self.tokens.insert(token_id, &info);
            self.env().emit_event(Minted {
                token_id,
                creator: caller,
                audio_cid,
                metadata_cid,
                royalty_splits,
            });
            Ok(token_id)
        }

        /// Transfers a token the caller owns to `to`.
        #[ink(message)]
        pub fn transfer(&mut self, to: AccountId, token_id: u64) -> Result<(), Error> {
            let mut info = self.token(token_id)?;
            let caller = self.env().caller();
            if info.owner != caller {
                return Err(Error::NotOwner);
            }
            info.owner = to;
            self.tokens.insert(token_id, &info);
            self.env().emit_event(Transferred {
                token_id,
                from: caller,
                to,
            });
            Ok(())
        }

        /// Records that the caller listened to a track for `seconds` (at least 1).
        #[ink(message)]
        pub fn listen(&mut self, token_id: u64, seconds: u32) -> Result<(), Error> {
            self.token(token_id)?;
            if seconds == 0 {
                return Err(Error::ZeroSeconds);
            }
            let listener = self.env().caller();
            self.env().emit_event(Listened {
                token_id,
                listener,
                seconds,
            });
            Ok(())
        }

        /// Tags a track; the tag is 1..=32 bytes.
        #[ink(message)]
        pub fn tag(&mut self, token_id: u64, tag: String) -> Result<(), Error> {
            self.token(token_id)?;
            if tag.is_empty() || tag.len() > MAX_TAG_LEN {
                return Err(Error::InvalidTag);
            }
            let curator = self.env().caller();
            self.env().emit_event(Tagged {
                token_id,
                curator,
                tag,
            });
            Ok(())
        }

        /// Creates a playlist owned by the caller and returns its id (from 1); name 1..=64 bytes.
        #[ink(message)]
        pub fn create_playlist(&mut self, name: String) -> Result<u64, Error> {
            if name.is_empty() || name.len() > MAX_NAME_LEN {
                return Err(Error::InvalidName);
            }
            let owner = self.env().caller();
            let playlist_id = self.next_playlist_id;
            self.next_playlist_id = playlist_id.checked_add(1).expect("playlist ids exhausted");
            self.playlists.insert(
                playlist_id,
                &Playlist {
                    owner,
                    name: name.clone(),
                },
            );
            self.env().emit_event(PlaylistCreated {
                playlist_id,
                owner,
                name,
            });
            Ok(playlist_id)
        }

        /// Adds a track to one of the caller's playlists, once.
        #[ink(message)]
        pub fn add_to_playlist(&mut self, playlist_id: u64, token_id: u64) -> Result<(), Error> {
            let playlist = self.playlists.get(playlist_id).ok_or(Error::PlaylistNotFound)?;
            let curator = self.env().caller();
            if playlist.owner != curator {
                return Err(Error::NotOwner);
            }
            self.token(token_id)?;
            if self.playlist_entries.contains((playlist_id, token_id)) {
                return Err(Error::AlreadyInPlaylist);
            }
            self.playlist_entries.insert((playlist_id, token_id), &());
            self.env().emit_event(PlaylistAdded {
                playlist_id,
                token_id,
                curator,
            });
            Ok(())
        }

        /// Adds `account` to the oracle set. Contract owner only.
        #[ink(message)]
        pub fn add_oracle(&mut self, account: AccountId) -> Result<(), Error> {
            self.ensure_contract_owner()?;
            self.oracles.insert(account, &());
            self.env().emit_event(OracleAdded { account });
            Ok(())
        }

        /// Removes `account` from the oracle set. Contract owner only.
        #[ink(message)]
        pub fn remove_oracle(&mut self, account: AccountId) -> Result<(), Error> {
            self.ensure_contract_owner()?;
            self.oracles.remove(account);
            self.env().emit_event(OracleRemoved { account });
            Ok(())
        }

        /// The owner of a token, if it exists.
        #[ink(message)]
        pub fn owner_of(&self, token_id: u64) -> Option<AccountId> {
            self.tokens.get(token_id).map(|info| info.owner)
        }

        /// Everything about a token, if it exists.
        #[ink(message)]
        pub fn token_info(&self, token_id: u64) -> Option<TokenInfo> {
            self.tokens.get(token_id)
        }

        /// How many tokens were minted.
        #[ink(message)]
        pub fn total_supply(&self) -> u64 {
            self.next_token_id.saturating_sub(1)
        }

        /// Whether `account` is in the oracle set.
        #[ink(message)]
        pub fn is_oracle(&self, account: AccountId) -> bool {
            self.oracles.contains(account)
        }

        /// The contract owner.
        #[ink(message)]
        pub fn owner(&self) -> AccountId {
            self.owner
        }

        fn token(&self, token_id: u64) -> Result<TokenInfo, Error> {
            self.tokens.get(token_id).ok_or(Error::TokenNotFound)
        }

        fn ensure_contract_owner(&self) -> Result<(), Error> {
            if self.env().caller() != self.owner {
                return Err(Error::NotContractOwner);
            }
            Ok(())
        }

        fn check_cid(cid: &str) -> Result<(), Error> {
            if cid.is_empty() || cid.len() > MAX_CID_LEN {
                return Err(Error::InvalidCid);
            }
            Ok(())
        }

        fn check_splits(splits: &[(AccountId, u16)]) -> Result<(), Error> {
            if splits.is_empty() || splits.len() > MAX_SPLITS {
                return Err(Error::InvalidSplits);
            }
            let mut total: u32 = 0;
            for (i, (account, share)) in splits.iter().enumerate() {
                let duplicate = splits[..i].iter().any(|(other, _)| other == account);
                if *share == 0 || duplicate {
                    return Err(Error::InvalidSplits);
                }
                total = total.saturating_add(u32::from(*share));
            }
            if total != BASIS_POINTS {
                return Err(Error::InvalidSplits);
            }
            Ok(())
        }
    }

    impl Default for AmiNft {
        fn default() -> Self {
            Self::new()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use ink::env::test::{default_accounts, recorded_events, set_caller, DefaultAccounts};
        use ink::env::DefaultEnvironment;

        fn accounts() -> DefaultAccounts<DefaultEnvironment> {
            default_accounts::<DefaultEnvironment>()
        }

        fn cid() -> String {
            String::from("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
        }

        fn minted(contract: &mut AmiNft) -> u64 {
            let alice = accounts().alice;
            contract
                .mint(cid(), cid(), ink::prelude::vec![(alice, 10_000)])
                .expect("mint")
        }

        #[ink::test]
        fn new_makes_caller_owner() {
            set_caller::<DefaultEnvironment>(accounts().alice);
            let contract = AmiNft::new();
            assert_eq!(contract.owner(), accounts().alice);
            assert_eq!(contract.total_supply(), 0);
        }

        #[ink::test]
        fn mint_assigns_ids_from_one_and_emits() {
            set_caller::<DefaultEnvironment>(accounts().alice);
            let mut contract = AmiNft::new();
            assert_eq!(minted(&mut contract), 1);
            assert_eq!(minted(&mut contract), 2);
            assert_eq!(contract.owner_of(2), Some(accounts().alice));
            assert_eq!(contract.total_supply(), 2);
            assert_eq!(recorded_events().count(), 2);
        }

        #[ink::test]
        fn mint_rejects_bad_splits_and_cids() {
            let a = accounts();
            set_caller::<DefaultEnvironment>(a.alice);
            let mut contract = AmiNft::new();
            let bad_sum = ink::prelude::vec![(a.alice, 5_000), (a.bob, 4_999)];
            assert_eq!(contract.mint(cid(), cid(), bad_sum), Err(Error::InvalidSplits));
            let duplicate = ink::prelude::vec![(a.alice, 5_000), (a.alice, 5_000)];
            assert_eq!(contract.mint(cid(), cid(), duplicate), Err(Error::InvalidSplits));
            let zero = ink::prelude::vec![(a.alice, 10_000), (a.bob, 0)];
            assert_eq!(contract.mint(cid(), cid(), zero), Err(Error::InvalidSplits));
            assert_eq!(contract.mint(cid(), cid(), Vec::new()), Err(Error::InvalidSplits));
            let ok = ink::prelude::vec![(a.alice, 10_000)];
            assert_eq!(contract.mint(String::new(), cid(), ok.clone()), Err(Error::InvalidCid));
            let long = "x".repeat(MAX_CID_LEN + 1);
            assert_eq!(contract.mint(cid(), long, ok), Err(Error::InvalidCid));
            assert_eq!(contract.total_supply(), 0);
            assert_eq!(recorded_events().count(), 0);
        }

        #[ink::test]
        fn transfer_is_owner_only() {
            let a = accounts();
            set_caller::<DefaultEnvironment>(a.alice);
            let mut contract = AmiNft::new();
            let id = minted(&mut contract);
            set_caller::<DefaultEnvironment>(a.bob);
            assert_eq!(contract.transfer(a.bob, id), Err(Error::NotOwner));
            set_caller::<DefaultEnvironment>(a.alice);
            assert_eq!(contract.transfer(a.bob, id), Ok(()));
            assert_eq!(contract.owner_of(id), Some(a.bob));
            assert_eq!(contract.transfer(a.bob, 99), Err(Error::TokenNotFound));
        }

        #[ink::test]
        fn listen_tag_and_playlists() {
            let a = accounts();
            set_caller::<DefaultEnvironment>(a.alice);
            let mut contract = AmiNft::new();
            let id = minted(&mut contract);
            assert_eq!(contract.listen(id, 0), Err(Error::ZeroSeconds));
            assert_eq!(contract.listen(id, 30), Ok(()));
            assert_eq!(contract.listen(7, 30), Err(Error::TokenNotFound));
            assert_eq!(contract.tag(id, String::new()), Err(Error::InvalidTag));
            assert_eq!(contract.tag(id, String::from("lofi")), Ok(()));
            assert_eq!(contract.create_playlist(String::new()), Err(Error::InvalidName));
            let playlist = contract.create_playlist(String::from("night")).expect("playlist");
            assert_eq!(contract.add_to_playlist(playlist, id), Ok(()));
            assert_eq!(contract.add_to_playlist(playlist, id), Err(Error::AlreadyInPlaylist));
            assert_eq!(contract.add_to_playlist(playlist + 1, id), Err(Error::PlaylistNotFound));
            set_caller::<DefaultEnvironment>(a.bob);
            assert_eq!(contract.add_to_playlist(playlist, id), Err(Error::NotOwner));
        }

        #[ink::test]
        fn oracle_set_is_owner_managed() {
            let a = accounts();
            set_caller::<DefaultEnvironment>(a.alice);
            let mut contract = AmiNft::new();
            assert_eq!(contract.add_oracle(a.charlie), Ok(()));
            assert!(contract.is_oracle(a.charlie));
            set_caller::<DefaultEnvironment>(a.bob);
            assert_eq!(contract.remove_oracle(a.charlie), Err(Error::NotContractOwner));
            set_caller::<DefaultEnvironment>(a.alice);
            assert_eq!(contract.remove_oracle(a.charlie), Ok(()));
            assert!(!contract.is_oracle(a.charlie));
        }
    }
}
